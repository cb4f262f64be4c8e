using System.Diagnostics;
using System.Text;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;

namespace ConfigSpec.Tests.Transport;

/// <summary>mqtts:// against a real mosquitto TLS listener with a throw-away CA made by openssl.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class MqttTlsTests : IDisposable
{
    private readonly string _dir = TestEnvironment.NewTemporaryDirectory();
    private MosquittoBroker? _broker;

    private void OpenSsl(params string[] args)
    {
        var start = new ProcessStartInfo("openssl") { WorkingDirectory = _dir, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"openssl {string.Join(' ', args)}: {error}");
    }

    private int StartTlsBroker(bool requireCertificate = false)
    {
        OpenSsl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=ConfigSpec test CA", "-keyout", "ca.key", "-out", "ca.pem");
        OpenSsl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr");
        File.WriteAllText(Path.Combine(_dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
        OpenSsl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "server.pem");
        OpenSsl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Other CA", "-keyout", "other.key", "-out", "other.pem");
        OpenSsl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=pi5-lab-1", "-keyout", "client.key", "-out", "client.csr");
        OpenSsl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-out", "client.pem");

        // mosquitto started as root drops to its own user, which must be able to read the key.
        foreach (var file in Directory.GetFiles(_dir))
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }

        _broker = new MosquittoBroker($"cafile {_dir}/ca.pem\ncertfile {_dir}/server.pem\nkeyfile {_dir}/server.key" + (requireCertificate ? "\nrequire_certificate true" : string.Empty));
        return _broker.Port;
    }

    /// <summary>Connects with <paramref name="options"/>, and a message published to itself over that connection comes back.</summary>
    private static async Task RoundTripAsync(MqttClientOptions options, string text)
    {
        await using var client = new MqttClient(options);
        await client.ConnectAsync();
        await client.SubscribeAsync("secure/topic", 1);
        await client.PublishAsync("secure/topic", text, 1);
        var message = await client.Messages.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(text, Encoding.UTF8.GetString(message.Payload));
    }

    [Fact]
    public async Task Connects_over_tls_with_the_right_ca_and_not_with_another()
    {
        var port = StartTlsBroker();
        await RoundTripAsync(new MqttClientOptions { Broker = new Uri($"mqtts://127.0.0.1:{port}"), CaFile = Path.Combine(_dir, "ca.pem") }, "over tls");

        await using var wrong = new MqttClient(new MqttClientOptions
        {
            Broker = new Uri($"mqtts://127.0.0.1:{port}"), CaFile = Path.Combine(_dir, "other.pem"), ConnectTimeout = TimeSpan.FromSeconds(2),
        });
        var ex = await Assert.ThrowsAsync<MqttException>(() => wrong.ConnectAsync());
        Assert.Contains("no connection to broker mqtts://127.0.0.1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_broker_that_requires_client_certificates_takes_the_board_certificate_and_key()
    {
        var port = StartTlsBroker(requireCertificate: true);
        await RoundTripAsync(new MqttClientOptions
        {
            Broker = new Uri($"mqtts://127.0.0.1:{port}"), CaFile = Path.Combine(_dir, "ca.pem"),
            CertificateFile = Path.Combine(_dir, "client.pem"), KeyFile = Path.Combine(_dir, "client.key"),
        }, "with a client certificate");

        await using var anonymous = new MqttClient(new MqttClientOptions
        {
            Broker = new Uri($"mqtts://127.0.0.1:{port}"), CaFile = Path.Combine(_dir, "ca.pem"), ConnectTimeout = TimeSpan.FromSeconds(2),
        });
        await Assert.ThrowsAsync<MqttException>(() => anonymous.ConnectAsync());
    }

    public void Dispose()
    {
        _broker?.Dispose();
        Directory.Delete(_dir, true);
    }
}
