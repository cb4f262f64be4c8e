using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace ConfigSpec.Tests.Infrastructure;

/// <summary>
/// A throw-away PostgreSQL cluster (Debian's postgresql package) on a free loopback port, run as the postgres user,
/// with trust authentication; each test gets its own database from <see cref="NewDatabase"/>.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    private readonly string _dir = TestEnvironment.NewTemporaryDirectory();
    private readonly string _bin;

    public PostgresServer()
    {
        _bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending().FirstOrDefault() ?? ""
            : "";
        if (_bin.Length == 0)
        {
            throw new InvalidOperationException("PostgreSQL is not installed (scripts/test.sh installs the Debian package postgresql)");
        }

        Port = MosquittoBroker.FreePort();
        Run("chown", "-R", "postgres:", _dir);
        AsPostgres(Path.Combine(_bin, "initdb"), "-D", DataDir, "-A", "trust", "-U", "configspec", "--no-sync", "-E", "UTF8");
        AsPostgres(Path.Combine(_bin, "pg_ctl"), "-D", DataDir, "-w", "-l", Path.Combine(_dir, "server.log"),
            "-o", $"-p {Port.ToString(CultureInfo.InvariantCulture)} -k {_dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start");
    }

    public int Port { get; }

    private string DataDir => Path.Combine(_dir, "data");

    private string Admin => $"Host=127.0.0.1;Port={Port.ToString(CultureInfo.InvariantCulture)};Username=configspec;Database=postgres;Pooling=false";

    /// <summary>A fresh empty database; returns its connection string.</summary>
    public string NewDatabase()
    {
        var name = "fleet_" + Guid.NewGuid().ToString("N")[..12];
        using (var c = new NpgsqlConnection(Admin))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = $"CREATE DATABASE {name}";
            cmd.ExecuteNonQuery();
        }

        return $"Host=127.0.0.1;Port={Port.ToString(CultureInfo.InvariantCulture)};Username=configspec;Database={name}";
    }

    private static void AsPostgres(string program, params string[] args) =>
        Run(Environment.UserName == "root" ? "runuser" : program, Environment.UserName == "root" ? ["-u", "postgres", "--", program, .. args] : args);

    private static void Run(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var p = Process.Start(start)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed ({p.ExitCode}): {error} {output.Result}");
        }
    }

    public void Dispose()
    {
        try
        {
            AsPostgres(Path.Combine(_bin, "pg_ctl"), "-D", DataDir, "-m", "immediate", "stop");
        }
        catch (InvalidOperationException)
        {
            // already stopped
        }
    }
}
