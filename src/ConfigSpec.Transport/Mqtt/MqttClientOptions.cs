using System.Globalization;
using ConfigSpec.Interop;

namespace ConfigSpec.Transport.Mqtt;

/// <summary>A message left with the broker, published by it if this client vanishes.</summary>
public sealed record MqttLastWill(string Topic, byte[] Payload, int Qos = 1, bool Retain = true);

/// <summary>Connection settings for <see cref="MqttClient"/>.</summary>
public sealed record MqttClientOptions
{
    /// <summary><c>mqtt://host[:1883]</c> or <c>mqtts://host[:8883]</c>.</summary>
    public required Uri Broker { get; init; }

    public string ClientId { get; init; } = "configspec-" + Guid.NewGuid().ToString("N")[..12];

    public string? Username { get; init; }

    public string? Password { get; init; }

    /// <summary>CA certificate file for <c>mqtts://</c> (null: the system's CA store).</summary>
    public string? CaFile { get; init; }

    public string? CertificateFile { get; init; }

    public string? KeyFile { get; init; }

    public int KeepAliveSeconds { get; init; } = 30;

    public bool CleanStart { get; init; } = true;

    /// <summary>
    /// Keep the broker-side session (subscriptions and queued QoS 1 messages) across disconnects and restarts: an MQTT 5
    /// connection with clean start false and a session expiry interval of <see cref="SessionExpiry"/>. The client id
    /// must then be fixed, since the broker finds the session by it.
    /// </summary>
    public bool PersistentSession { get; init; }

    /// <summary>How long the broker keeps a persistent session (and queues for it) while this client is away.</summary>
    public TimeSpan SessionExpiry { get; init; } = TimeSpan.FromDays(1);

    public MqttLastWill? LastWill { get; init; }

    /// <summary>First and largest reconnect delay; doubled after each failure.</summary>
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan ReconnectDelayMax { get; init; } = TimeSpan.FromSeconds(16);

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public bool UseTls => Broker.Scheme == "mqtts";

    public int Port => Broker.IsDefaultPort || Broker.Port < 0 ? (UseTls ? 8883 : 1883) : Broker.Port;

    /// <summary>Environment variable read for the password when no password setting is given.</summary>
    public const string PasswordVariable = "CONFIGSPEC_MQTT_PASSWORD";

    /// <summary>Options from command-line settings (the password falls back to <see cref="PasswordVariable"/>).</summary>
    public static MqttClientOptions FromSettings(string url, string setting, string? username, string? password, string? caFile, string? certificateFile, string? keyFile) => new()
    {
        Broker = ParseBroker(url, setting),
        Username = username,
        Password = password ?? Environment.GetEnvironmentVariable(PasswordVariable),
        CaFile = caFile,
        CertificateFile = certificateFile,
        KeyFile = keyFile,
    };

    /// <summary>Parses a broker setting; the error names the setting and the value.</summary>
    public static Uri ParseBroker(string value, string setting)
    {
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("mqtt" or "mqtts") || string.IsNullOrEmpty(uri.Host))
        {
            throw new ConfigSpecException($"{setting} '{value}' is not a broker address: use mqtt://HOST[:PORT] or mqtts://HOST[:PORT]");
        }

        return uri;
    }

    internal void Validate()
    {
        if (KeepAliveSeconds is < 5 or > 65535)
        {
            throw new ConfigSpecException(string.Create(CultureInfo.InvariantCulture, $"MQTT keep-alive {KeepAliveSeconds} s is out of range (5..65535)"));
        }

        if (CertificateFile is null != KeyFile is null)
        {
            throw new ConfigSpecException("MQTT client certificate and key must be given together");
        }

        foreach (var file in new[] { CaFile, CertificateFile, KeyFile })
        {
            if (file is not null && !File.Exists(file))
            {
                throw new ConfigSpecException($"MQTT TLS file '{file}' does not exist");
            }
        }

        if (!UseTls && (CaFile ?? CertificateFile) is not null)
        {
            throw new ConfigSpecException($"TLS files are set but broker '{Broker}' is not mqtts://");
        }
    }
}

/// <summary>A received message with its MQTT 5 request/response properties.</summary>
public sealed record MqttMessage(string Topic, byte[] Payload, int Qos, bool Retain, string? ResponseTopic = null, byte[]? CorrelationData = null);

/// <summary>MQTT 5 properties of an outgoing publish.</summary>
public sealed record MqttPublishProperties(string? ResponseTopic = null, byte[]? CorrelationData = null, uint? MessageExpirySeconds = null);

public class MqttException : ConfigSpecException
{
    public MqttException() { }

    public MqttException(string message) : base(message) { }

    public MqttException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// The broker answered and refused (an MQTT 5 reason code of 0x80 or more, such as "not authorized" from an ACL):
/// sending the same message again will not help, unlike a lost connection.
/// </summary>
public sealed class MqttRefusedException : MqttException
{
    public MqttRefusedException() { }

    public MqttRefusedException(string message) : base(message) { }

    public MqttRefusedException(string message, Exception innerException) : base(message, innerException) { }
}
