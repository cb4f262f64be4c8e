using System.Globalization;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Profiling.Profiles;
using System.Data;
using System.Data.Common;
using ConfigSpec.Contracts;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace ConfigSpec.Aggregator.Storage;

/// <summary>A message that passed validation, ready to store.</summary>
public sealed record Accepted(MessageHeader Header, string Kind, string Json, string? Board = null, StatusMessage? Status = null, BoardProfile? Profile = null,
    ServedConfig? Config = null, MetricsMessage? Metrics = null);

public sealed record DeviceRow(string Id, string? Board, string? Hostname, string State, string? Software, string? Objective, string? Detail,
    DateTimeOffset FirstSeen, DateTimeOffset LastSeen, string? ConfigJson, string? LastMetricsJson);

public sealed record StoredProfile(string DeviceId, string Board, long Seq, BoardProfile Profile);

public sealed record MetricsRow(string DeviceId, long Seq, DateTimeOffset Time, double? Goodput, double? Acceptance, int K, double? Watts, double? JoulesPerToken, int Tokens);

/// <summary>
/// The fleet's database: devices, their latest profile and configuration, metrics, and what was refused. SQLite (a
/// file path) by default, PostgreSQL (an Npgsql connection string, <c>Host=...;Database=...</c>) when one machine's file
/// is not enough; the SQL is the common subset of both, with dialect-specific table definitions. Every board message
/// with a sequence number is stored once (a ledger of (device, kind, seq)), so a message sent again after a crash is not
/// counted twice. Schema changes are numbered migrations recorded in <c>schema_version</c>.
/// One writer (the ingestor) on the store's own connection; readers open their own.
/// </summary>
public sealed class FleetStore : IDisposable
{
    private static readonly string[] SqliteMigrations =
    [
        """
        CREATE TABLE devices (
            id TEXT PRIMARY KEY, board TEXT, hostname TEXT, state TEXT NOT NULL, software TEXT, objective TEXT, detail TEXT,
            status_seq BIGINT NOT NULL DEFAULT 0, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL);
        CREATE TABLE seen (device_id TEXT NOT NULL, kind TEXT NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (device_id, kind, seq)) WITHOUT ROWID;
        CREATE TABLE profiles (device_id TEXT PRIMARY KEY, board TEXT NOT NULL, seq BIGINT NOT NULL, received TEXT NOT NULL, json TEXT NOT NULL);
        CREATE TABLE configs (device_id TEXT PRIMARY KEY, seq BIGINT NOT NULL, received TEXT NOT NULL, json TEXT NOT NULL);
        CREATE TABLE metrics (device_id TEXT NOT NULL, seq BIGINT NOT NULL, time TEXT NOT NULL, goodput DOUBLE PRECISION, acceptance DOUBLE PRECISION,
            k INTEGER NOT NULL, watts DOUBLE PRECISION, joules_per_token DOUBLE PRECISION, tokens INTEGER NOT NULL, json TEXT NOT NULL);
        CREATE INDEX metrics_device_time ON metrics (device_id, time);
        CREATE TABLE rejections (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL);
        CREATE TABLE rejection_counts (reason TEXT PRIMARY KEY, n BIGINT NOT NULL);
        """,
    ];

    private static readonly string[] PostgresMigrations =
    [
        """
        CREATE TABLE devices (
            id TEXT PRIMARY KEY, board TEXT, hostname TEXT, state TEXT NOT NULL, software TEXT, objective TEXT, detail TEXT,
            status_seq BIGINT NOT NULL DEFAULT 0, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL);
        CREATE TABLE seen (device_id TEXT NOT NULL, kind TEXT NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (device_id, kind, seq));
        CREATE TABLE profiles (device_id TEXT PRIMARY KEY, board TEXT NOT NULL, seq BIGINT NOT NULL, received TEXT NOT NULL, json TEXT NOT NULL);
        CREATE TABLE configs (device_id TEXT PRIMARY KEY, seq BIGINT NOT NULL, received TEXT NOT NULL, json TEXT NOT NULL);
        CREATE TABLE metrics (device_id TEXT NOT NULL, seq BIGINT NOT NULL, time TEXT NOT NULL, goodput DOUBLE PRECISION, acceptance DOUBLE PRECISION,
            k INTEGER NOT NULL, watts DOUBLE PRECISION, joules_per_token DOUBLE PRECISION, tokens INTEGER NOT NULL, json TEXT NOT NULL);
        CREATE INDEX metrics_device_time ON metrics (device_id, time);
        CREATE TABLE rejections (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, time TEXT NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL);
        CREATE TABLE rejection_counts (reason TEXT PRIMARY KEY, n BIGINT NOT NULL);
        """,
    ];

    private const int KeptRejections = 1000;
    private readonly DbConnection _connection;
    private readonly NpgsqlDataSource? _postgres;
    private readonly string? _sqlite;

    /// <param name="database">A SQLite file path, or a PostgreSQL connection string (<c>Host=...;Database=...;Username=...</c>).</param>
    public FleetStore(string database)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(database);
        if (IsPostgres(database))
        {
            try
            {
                _postgres = new NpgsqlSlimDataSourceBuilder(database).Build();
            }
            catch (ArgumentException ex)
            {
                throw new ConfigSpecException($"--db: not a valid PostgreSQL connection string: {ex.Message}", ex);
            }

            var builder = new NpgsqlConnectionStringBuilder(database);
            Description = $"PostgreSQL {builder.Host}:{builder.Port}/{builder.Database}";
        }
        else
        {
            var path = System.IO.Path.GetFullPath(database);
            if (System.IO.Path.GetDirectoryName(path) is { } dir)
            {
                Directory.CreateDirectory(dir);
            }

            // A busy database fails a statement after 5 s (the ingestor retries the batch) rather than the default 30 s.
            _sqlite = new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, DefaultTimeout = 5 }.ToString();
            Description = "SQLite " + path;
        }

        _connection = Open();
        if (_sqlite is not null)
        {
            Execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
        }

        Migrate();
    }

    /// <summary>"SQLite /path" or "PostgreSQL host:port/db" (no credentials).</summary>
    public string Description { get; }

    public bool IsPostgresStore => _postgres is not null;

    /// <summary>The schema version after the migrations at open (read on the reader's own connection, so safe from any thread).</summary>
    public int SchemaVersion
    {
        get
        {
            using var c = Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = VersionQuery;
            return Convert.ToInt32(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
        }
    }

    private const string VersionQuery = "SELECT COALESCE(MAX(version), 0) FROM schema_version";

    public static int LatestSchemaVersion => SqliteMigrations.Length;

    /// <summary>True for a PostgreSQL connection string (key=value pairs naming a host), false for a file path.</summary>
    public static bool IsPostgres(string database) =>
        database.Contains('=', StringComparison.Ordinal) && database.Contains("host", StringComparison.OrdinalIgnoreCase);

    private DbConnection Open()
    {
        try
        {
            if (_postgres is not null)
            {
                return _postgres.OpenConnection();
            }

            var c = new SqliteConnection(_sqlite);
            c.Open();
            return c;
        }
        catch (DbException ex)
        {
            throw new ConfigSpecException($"--db {Description}: cannot open the database: {ex.Message}", ex);
        }
    }

    private void Migrate()
    {
        Execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied TEXT NOT NULL)");
        var migrations = _postgres is null ? SqliteMigrations : PostgresMigrations;
        var version = Convert.ToInt32(Scalar(VersionQuery), CultureInfo.InvariantCulture);
        if (version > migrations.Length)
        {
            throw new ConfigSpecException($"--db {Description}: schema version {version} is newer than this build knows ({migrations.Length}); use a newer configspec-aggregator");
        }

        for (var v = version; v < migrations.Length; v++)
        {
            using var tx = _connection.BeginTransaction();
            Execute(migrations[v], tx);
            Execute("INSERT INTO schema_version (version, applied) VALUES (@v, @t)", tx, Param.Integer("@v", v + 1), Param.Text("@t", Iso(DateTimeOffset.UtcNow)));
            tx.Commit();
        }
    }

    /// <summary>Stores a batch in one transaction; returns how many were new (duplicates by sequence number are skipped).</summary>
    public int Store(IReadOnlyList<Accepted> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var stored = 0;
        using var tx = _connection.BeginTransaction();
        foreach (var m in batch)
        {
            var h = m.Header;
            if (h.Seq > 0 && Execute("INSERT INTO seen (device_id, kind, seq) VALUES (@d, @k, @s) ON CONFLICT DO NOTHING", tx, Param.Text("@d", h.DeviceId), Param.Text("@k", m.Kind), Param.Long("@s", h.Seq)) == 0)
            {
                continue;
            }

            var now = Iso(DateTimeOffset.UtcNow);
            Execute("INSERT INTO devices (id, state, first_seen, last_seen) VALUES (@d, 'unknown', @n, @n) ON CONFLICT (id) DO UPDATE SET last_seen = @n",
                tx, Param.Text("@d", h.DeviceId), Param.Text("@n", now));
            switch (m.Kind)
            {
                case "status" when m.Status is { } s:
                    // Newer births win; the last will (seq 0) only marks the device offline.
                    if (h.Seq == 0)
                    {
                        Execute("UPDATE devices SET state = @st, detail = @de WHERE id = @d", tx, Param.Text("@d", h.DeviceId), Param.Text("@st", StatusMessage.Name(s.State)), Param.Text("@de", s.Detail));
                    }
                    else
                    {
                        Execute("""
                            UPDATE devices SET board = @b, hostname = @h, state = @st, software = @sw, objective = @o, detail = @de, status_seq = @s
                            WHERE id = @d AND status_seq <= @s
                            """, tx, Param.Text("@d", h.DeviceId), Param.Text("@b", s.Board), Param.Text("@h", s.Hostname), Param.Text("@st", StatusMessage.Name(s.State)), Param.Text("@sw", s.Software), Param.Text("@o", s.Objective),
                            Param.Text("@de", s.Detail), Param.Long("@s", h.Seq));
                    }

                    break;
                case "profile":
                    Execute("""
                        INSERT INTO profiles (device_id, board, seq, received, json) VALUES (@d, @b, @s, @n, @j)
                        ON CONFLICT (device_id) DO UPDATE SET board = @b, seq = @s, received = @n, json = @j WHERE excluded.seq >= profiles.seq
                        """, tx, Param.Text("@d", h.DeviceId), Param.Text("@b", m.Board), Param.Long("@s", h.Seq), Param.Text("@n", now), Param.Text("@j", m.Json));
                    Execute("UPDATE devices SET board = @b WHERE id = @d AND board IS NULL", tx, Param.Text("@d", h.DeviceId), Param.Text("@b", m.Board));
                    break;
                case "config":
                    Execute("""
                        INSERT INTO configs (device_id, seq, received, json) VALUES (@d, @s, @n, @j)
                        ON CONFLICT (device_id) DO UPDATE SET seq = @s, received = @n, json = @j WHERE excluded.seq >= configs.seq
                        """, tx, Param.Text("@d", h.DeviceId), Param.Long("@s", h.Seq), Param.Text("@n", now), Param.Text("@j", m.Json));
                    break;
                case "metrics" when m.Metrics is { } x:
                    Execute("""
                        INSERT INTO metrics (device_id, seq, time, goodput, acceptance, k, watts, joules_per_token, tokens, json)
                        VALUES (@d, @s, @t, @g, @a, @k, @w, @e, @n, @j)
                        """, tx, Param.Text("@d", h.DeviceId), Param.Long("@s", h.Seq), Param.Text("@t", Iso(h.Time)), Param.Real("@g", x.Goodput), Param.Real("@a", x.Acceptance), Param.Integer("@k", x.K), Param.Real("@w", x.Watts),
                        Param.Real("@e", x.JoulesPerToken), Param.Integer("@n", x.Tokens), Param.Text("@j", m.Json));
                    break;
                default:
                    break;
            }

            stored++;
        }

        tx.Commit();
        return stored;
    }

    /// <summary>Records a refused message (the last 1,000 are kept; the count per reason is kept for ever).</summary>
    public void Reject(IReadOnlyList<(string Topic, ContractFault Reason, string Detail)> rejections)
    {
        ArgumentNullException.ThrowIfNull(rejections);
        if (rejections.Count == 0)
        {
            return;
        }

        using var tx = _connection.BeginTransaction();
        var now = Iso(DateTimeOffset.UtcNow);
        foreach (var (topic, reason, detail) in rejections)
        {
            var name = ContractException.Name(reason);
            Execute("INSERT INTO rejections (time, topic, reason, detail) VALUES (@t, @p, @r, @d)", tx, Param.Text("@t", now), Param.Text("@p", topic), Param.Text("@r", name),
                Param.Text("@d", detail.Length > 500 ? detail[..500] : detail));
            Execute("INSERT INTO rejection_counts (reason, n) VALUES (@r, 1) ON CONFLICT (reason) DO UPDATE SET n = rejection_counts.n + 1", tx, Param.Text("@r", name));
        }

        Execute($"DELETE FROM rejections WHERE id <= (SELECT MAX(id) FROM rejections) - {KeptRejections}", tx);
        tx.Commit();
    }

    // ---- reading (each call on its own connection, so the web side never waits on the ingestor's) ----

    public IReadOnlyList<DeviceRow> Devices(string? id = null)
    {
        using var c = Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = """
            SELECT d.id, d.board, d.hostname, d.state, d.software, d.objective, d.detail, d.first_seen, d.last_seen, c.json,
                   (SELECT m.json FROM metrics m WHERE m.device_id = d.id ORDER BY m.time DESC, m.seq DESC LIMIT 1)
            FROM devices d LEFT JOIN configs c ON c.device_id = d.id
            """ + (id is null ? string.Empty : " WHERE d.id = @id") + " ORDER BY d.id";
        if (id is not null)
        {
            Add(cmd, Param.Text("@id", id));
        }

        using var r = cmd.ExecuteReader();
        var list = new List<DeviceRow>();
        while (r.Read())
        {
            list.Add(new DeviceRow(r.GetString(0), Str(r, 1), Str(r, 2), r.GetString(3), Str(r, 4), Str(r, 5), Str(r, 6),
                DateTimeOffset.Parse(r.GetString(7), CultureInfo.InvariantCulture), DateTimeOffset.Parse(r.GetString(8), CultureInfo.InvariantCulture), Str(r, 9), Str(r, 10)));
        }

        return list;
    }

    /// <summary>Every device's latest profile (parsed); <paramref name="deviceId"/> narrows to one.</summary>
    public IReadOnlyList<StoredProfile> Profiles(string? deviceId = null)
    {
        using var c = Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT device_id, board, seq, json FROM profiles" + (deviceId is null ? string.Empty : " WHERE device_id = @id") + " ORDER BY device_id";
        if (deviceId is not null)
        {
            Add(cmd, Param.Text("@id", deviceId));
        }

        using var r = cmd.ExecuteReader();
        var list = new List<StoredProfile>();
        while (r.Read())
        {
            var (_, profile) = ReadProfileJson(r.GetString(3), r.GetString(0));
            list.Add(new StoredProfile(r.GetString(0), r.GetString(1), r.GetInt64(2), profile));
        }

        return list;
    }

    public IReadOnlyList<MetricsRow> Metrics(string deviceId, int limit = 100)
    {
        using var c = Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT device_id, seq, time, goodput, acceptance, k, watts, joules_per_token, tokens FROM metrics WHERE device_id = @d ORDER BY time DESC, seq DESC LIMIT @n";
        Add(cmd, Param.Text("@d", deviceId));
        Add(cmd, Param.Integer("@n", limit));
        using var r = cmd.ExecuteReader();
        var list = new List<MetricsRow>();
        while (r.Read())
        {
            list.Add(new MetricsRow(r.GetString(0), r.GetInt64(1), DateTimeOffset.Parse(r.GetString(2), CultureInfo.InvariantCulture), Dbl(r, 3), Dbl(r, 4), r.GetInt32(5),
                Dbl(r, 6), Dbl(r, 7), r.GetInt32(8)));
        }

        list.Reverse();
        return list;
    }

    /// <summary>Counts for /api/health: rows per table and refusals per reason.</summary>
    public (IReadOnlyDictionary<string, long> Tables, IReadOnlyDictionary<string, long> Rejected, IReadOnlyList<(string Time, string Topic, string Reason, string Detail)> Recent) Health(int recent = 10)
    {
        using var c = Open();
        var tables = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var t in new[] { "devices", "profiles", "configs", "metrics", "seen" })
        {
            using var cmd = c.CreateCommand();
            cmd.CommandText = $"SELECT COUNT(*) FROM {t}";
            tables[t] = Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
        }

        var rejected = new Dictionary<string, long>(StringComparer.Ordinal);
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT reason, n FROM rejection_counts ORDER BY reason";
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                rejected[r.GetString(0)] = r.GetInt64(1);
            }
        }

        var list = new List<(string, string, string, string)>();
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT time, topic, reason, detail FROM rejections ORDER BY id DESC LIMIT @n";
            Add(cmd, Param.Integer("@n", recent));
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                list.Add((r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3)));
            }
        }

        return (tables, rejected, list);
    }

    internal static (string Board, BoardProfile Profile) ReadProfileJson(string json, string deviceId)
    {
        var message = Contract.Read<ProfileMessage>(System.Text.Encoding.UTF8.GetBytes(json));
        return FleetMessages.ReadProfile(message, deviceId);
    }

    private static string? Str(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static double? Dbl(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetDouble(i);

    private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    private object? Scalar(string sql)
    {
        using var cmd = _connection.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }

    private int Execute(string sql, DbTransaction? tx = null, params Param[] parameters)
    {
        using var cmd = _connection.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        foreach (var parameter in parameters)
        {
            Add(cmd, parameter);
        }

        return cmd.ExecuteNonQuery();
    }

    /// <summary>Each parameter with its declared type (PostgreSQL needs one for a null, and a typed binding is not guessed from a name).</summary>
    private readonly record struct Param(string Name, DbType Type, object? Value)
    {
        public static Param Text(string name, string? value) => new(name, DbType.String, value);

        public static Param Integer(string name, int value) => new(name, DbType.Int32, value);

        public static Param Long(string name, long value) => new(name, DbType.Int64, value);

        public static Param Real(string name, double? value) => new(name, DbType.Double, value);
    }

    private static void Add(DbCommand cmd, Param parameter)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = parameter.Name;
        p.DbType = parameter.Type;
        p.Value = parameter.Value ?? DBNull.Value;
        cmd.Parameters.Add(p);
    }

    public void Dispose()
    {
        _connection.Dispose();
        _postgres?.Dispose();
    }
}
