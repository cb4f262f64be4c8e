using System.Net.Sockets;
using System.Text;
using ConfigSpec.Edge.Daemon;
using ConfigSpec.Fleet.Systemd;
using ConfigSpec.Interop;
using ConfigSpec.Profiling.Selection;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Fleet;

public sealed class DaemonSettingsTests
{
    private static readonly Dictionary<string, string?> NoEnvironment = [];

    private static string Draft => TestEnvironment.Model("stories260K-Q8_0.gguf");

    private static string Write(string json)
    {
        var path = Path.Combine(TestEnvironment.NewTemporaryDirectory(), "edge.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static string Valid(string extra = "") => Write($$"""
        {"device_id": "pi5-a", "state_dir": "{{TestEnvironment.NewTemporaryDirectory()}}", "verifier": {"target_id": "stories260K"},
         "drafts": ["{{Draft}}"] {{extra}} }
        """);

    [Fact]
    public void A_valid_file_loads_with_defaults()
    {
        var s = EdgeSettings.Load(Valid(), [], NoEnvironment);
        Assert.Equal("pi5-a", s.DeviceId);
        Assert.Equal(Objective.Goodput, s.Objective);
        Assert.Equal(8, s.KMax);
        Assert.Equal("auto", s.Power);
        Assert.Equal("mqtt://127.0.0.1:1883/", s.Broker.Broker.ToString());
        Assert.Equal([Draft], s.Drafts);
        Assert.Equal("http://127.0.0.1:8089", s.Http);
        Assert.Null(s.KPolicy);
        Assert.Equal("ucb-specstop:c=0.2", EdgeSettings.Load(Valid(""", "k_policy": "ucb-specstop:c=0.2" """), [], NoEnvironment).KPolicy);
        Assert.Null(EdgeSettings.Load(Valid(""", "k_policy": "profile" """), [], NoEnvironment).KPolicy); // the selected K: the default
    }

    [Fact]
    public void Command_line_beats_environment_beats_file()
    {
        var file = Valid(""", "objective": "cost", "k_max": 4""");
        var env = new Dictionary<string, string?> { ["CONFIGSPEC_OBJECTIVE"] = "energy", ["CONFIGSPEC_BROKER__URL"] = "mqtt://10.0.0.5:1884", ["CONFIGSPEC_K_MAX"] = "6" };
        var s = EdgeSettings.Load(file, ["k_max=3"], env);
        Assert.Equal(Objective.Energy, s.Objective);
        Assert.Equal(3, s.KMax);
        Assert.Equal(1884, s.Broker.Port);
        Assert.Equal(Objective.Cost, EdgeSettings.Load(file, [], NoEnvironment).Objective);
    }

    [Theory]
    [InlineData(""", "objectve": "cost" """, "unknown setting 'objectve'")]
    [InlineData(""", "profile": {"max_round": 3} """, "unknown setting 'profile:max_round'")]
    [InlineData(""", "k_max": 99 """, "k_max '99'")]
    [InlineData(""", "objective": "speed" """, "objective 'speed' is not known")]
    [InlineData(""", "http": "ftp://x" """, "http 'ftp://x'")]
    [InlineData(""", "profile": {"min_rounds": 50, "max_rounds": 10} """, "profile:min_rounds")]
    [InlineData(""", "broker": {"url": "http://x"} """, "broker:url")]
    [InlineData(""", "fleet": {"adopt": "perhaps"} """, "fleet:adopt")]
    [InlineData(""", "broker": {"ca_file": "/nonexistent/ca.crt"} """, "broker:ca_file /nonexistent/ca.crt: no such file")]
    [InlineData(""", "k_policy": "greedy" """, "k_policy: unknown draft-length policy 'greedy'")]
    [InlineData(""", "k_policy": "static:40" """, "k_policy: static:40")]
    public void Bad_settings_are_refused_naming_the_setting(string extra, string mentions)
    {
        var ex = Assert.ThrowsAny<ConfigSpecException>(() => EdgeSettings.Load(Valid(extra), [], NoEnvironment));
        Assert.Contains(mentions, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_essentials_are_named()
    {
        var noDrafts = Write("""{"verifier": {"target_id": "t"}}""");
        Assert.Contains("drafts", Assert.ThrowsAny<ConfigSpecException>(() => EdgeSettings.Load(noDrafts, [], NoEnvironment)).Message, StringComparison.Ordinal);
        var noTarget = Write($$"""{"drafts": ["{{Draft}}"]}""");
        Assert.Contains("verifier:target_id", Assert.ThrowsAny<ConfigSpecException>(() => EdgeSettings.Load(noTarget, [], NoEnvironment)).Message, StringComparison.Ordinal);
        var missingDraft = Write("""{"verifier": {"target_id": "t"}, "drafts": ["/nonexistent/d.gguf"]}""");
        Assert.Contains("/nonexistent/d.gguf", Assert.ThrowsAny<ConfigSpecException>(() => EdgeSettings.Load(missingDraft, [], NoEnvironment)).Message, StringComparison.Ordinal);
        Assert.Contains("--config", Assert.ThrowsAny<ConfigSpecException>(() => EdgeSettings.Load("/nonexistent/edge.json", [], NoEnvironment)).Message, StringComparison.Ordinal);
        Assert.Contains("--set", Assert.ThrowsAny<ConfigSpecException>(() => EdgeSettings.Load(Valid(), ["k_max"], NoEnvironment)).Message, StringComparison.Ordinal);
        Assert.Contains("device_id", Assert.ThrowsAny<ConfigSpecException>(() => EdgeSettings.Load(Valid(), ["device_id=a/b"], NoEnvironment)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Device_id_defaults_to_the_machine_id()
    {
        var etc = TestEnvironment.NewTemporaryDirectory();
        File.WriteAllText(Path.Combine(etc, "machine-id"), "0123456789ABCDEF0123456789abcdef\n");
        Assert.Equal("edge-0123456789ab", EdgeSettings.DefaultDeviceId(etc));
    }

    /// <summary>
    /// The hosting package's notifier reads <c>$NOTIFY_SOCKET</c> when it is made, as it would under systemd; the variable
    /// is set only for that moment.
    /// </summary>
    private static ServiceNotifier NotifierFor(string? socket, string? watchdogMicroseconds)
    {
        lock (EnvironmentGate)
        {
            var before = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
            Environment.SetEnvironmentVariable("NOTIFY_SOCKET", socket);
            try
            {
                return new ServiceNotifier(new Microsoft.Extensions.Hosting.Systemd.SystemdNotifier(), watchdogMicroseconds);
            }
            finally
            {
                Environment.SetEnvironmentVariable("NOTIFY_SOCKET", before);
            }
        }
    }

    private static readonly Lock EnvironmentGate = new();

    [Fact]
    public void Notifications_reach_the_socket_named_by_systemd_through_the_hosting_notifier()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var path = Path.Combine(dir, "notify.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        var notifier = NotifierFor(path, "30000000");
        Assert.True(notifier.Enabled);
        Assert.Equal(TimeSpan.FromSeconds(30), notifier.WatchdogInterval);
        notifier.Ready("serving");
        notifier.Status("profiling 1/2");
        notifier.Watchdog();
        notifier.Stopping("stopping");
        var buffer = new byte[256];
        string Next() => Encoding.UTF8.GetString(buffer, 0, listener.Receive(buffer));
        Assert.Equal("READY=1\nSTATUS=serving", Next());
        Assert.Equal("STATUS=profiling 1/2", Next());
        Assert.Equal("WATCHDOG=1", Next());
        Assert.Equal("STOPPING=1\nSTATUS=stopping", Next());
    }

    [Fact]
    public void Abstract_socket_names_work_and_no_socket_means_silence()
    {
        var name = "configspec-test-" + Guid.NewGuid().ToString("N");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint("\0" + name));
        NotifierFor("@" + name, null).Status("profiling 1/2");

        var buffer = new byte[256];
        Assert.Equal("STATUS=profiling 1/2", Encoding.UTF8.GetString(buffer, 0, listener.Receive(buffer)));
        var silent = NotifierFor(null, string.Empty);
        Assert.False(silent.Enabled);
        Assert.Null(silent.WatchdogInterval);
        silent.Ready("nothing happens");

        // A socket that went away (the service manager restarting) does not stop the service.
        var gone = Path.Combine(TestEnvironment.NewTemporaryDirectory(), "gone.sock");
        var orphan = NotifierFor(gone, "1000000");
        Assert.True(orphan.Enabled);
        orphan.Watchdog();
    }

    /// <summary>The daemon reference's settings table (docs/daemon.md) names every key the daemon reads, and no key it does not.</summary>
    [Fact]
    public void The_reference_settings_table_agrees_with_the_settings_table()
    {
        var reference = File.ReadAllLines(Path.Combine(TestEnvironment.RepositoryRoot, "docs", "daemon.md"));
        var rows = reference.SkipWhile(l => !l.StartsWith("| key | default | meaning |", StringComparison.Ordinal)).Skip(2).TakeWhile(l => l.StartsWith('|'))
            .Select(l => l.Split('|')[1]).ToList();
        Assert.NotEmpty(rows);
        // A row's first cell: `section:key`, then `key` or `:key` for more of the same section.
        var documented = new HashSet<string>(StringComparer.Ordinal);
        foreach (var cell in rows)
        {
            string? section = null;
            foreach (var token in System.Text.RegularExpressions.Regex.Matches(cell, "`([^`]+)`").Select(m => m.Groups[1].Value))
            {
                var key = token.StartsWith(':') ? section + token : section is not null && !token.Contains(':', StringComparison.Ordinal) ? $"{section}:{token}" : token;
                section = key.Contains(':', StringComparison.Ordinal) ? key.Split(':')[0] : null;
                documented.Add(key);
            }
        }

        // verifier:broker and verifier:target are explained in the meaning column of verifier:target_id's row.
        var known = EdgeSettings.AllKeys.Where(k => k is not ("verifier:broker" or "verifier:target")).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(known, documented.Order(StringComparer.Ordinal));
    }
}
