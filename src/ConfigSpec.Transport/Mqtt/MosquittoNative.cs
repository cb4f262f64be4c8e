using System.Reflection;
using System.Runtime.InteropServices;
using ConfigSpec.Interop;

namespace ConfigSpec.Transport.Mqtt;

/// <summary>
/// Imports from libmosquitto (2.0, MQTT 5). All calls on one <c>struct mosquitto</c> are made either from
/// <see cref="MqttClient"/> under its lock or from libmosquitto's own network thread (callbacks).
/// </summary>
internal static unsafe partial class MosquittoNative
{
    public const string Library = "mosquitto";

    public const int ProtocolVersionOption = 1; // MOSQ_OPT_PROTOCOL_VERSION
    public const int ProtocolV5 = 5;
    public const int ProtocolV311 = 4;
    public const int TcpNoDelayOption = 11; // MOSQ_OPT_TCP_NODELAY
    public const int TlsUseOsCertsOption = 13; // MOSQ_OPT_TLS_USE_OS_CERTS
    public const int PropertyMessageExpiry = 2;
    public const int PropertyResponseTopic = 8;
    public const int PropertyCorrelationData = 9;

    private static readonly string[] Candidates = ["libmosquitto.so.1", "libmosquitto.so"];
    private static nint _handle;

#pragma warning disable CA1810 // The resolver must be installed before the first import runs; a field initializer would not guarantee that.
    static MosquittoNative() => NativeLibrary.SetDllImportResolver(typeof(MosquittoNative).Assembly, Resolve);
#pragma warning restore CA1810

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Library)
        {
            return 0;
        }

        if (_handle != 0)
        {
            return _handle;
        }

        foreach (var candidate in Candidates)
        {
            if (NativeLibrary.TryLoad(candidate, out _handle))
            {
                return _handle;
            }
        }

        throw new ConfigSpecException(
            $"libmosquitto not found (tried {string.Join(", ", Candidates)} on the library path): install the Debian package libmosquitto1 (2.0 or newer)");
    }

    /// <summary>Forces the resolver to run so a missing library is reported before any connection work.</summary>
    public static void EnsureLoaded() => _ = mosquitto_lib_version(null, null, null);

    [LibraryImport(Library)] public static partial int mosquitto_lib_version(int* major, int* minor, int* revision);
    [LibraryImport(Library)] public static partial int mosquitto_lib_init();
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint mosquitto_new(string? id, [MarshalAs(UnmanagedType.U1)] bool cleanSession, nint obj);
    [LibraryImport(Library)] public static partial void mosquitto_destroy(nint mosq);
    [LibraryImport(Library)] public static partial int mosquitto_int_option(nint mosq, int option, int value);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mosquitto_username_pw_set(nint mosq, string? username, string? password);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mosquitto_tls_set(nint mosq, string? caFile, string? caPath, string? certFile, string? keyFile, nint passwordCallback);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mosquitto_will_set_v5(nint mosq, string topic, int payloadLength, ReadOnlySpan<byte> payload, int qos,
        [MarshalAs(UnmanagedType.U1)] bool retain, nint properties);
    [LibraryImport(Library)]
    public static partial int mosquitto_reconnect_delay_set(nint mosq, uint delay, uint delayMax, [MarshalAs(UnmanagedType.U1)] bool exponential);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mosquitto_connect_async(nint mosq, string host, int port, int keepAlive);
    [LibraryImport(Library)] public static partial int mosquitto_disconnect_v5(nint mosq, int reasonCode, nint properties);
    [LibraryImport(Library)] public static partial int mosquitto_loop_start(nint mosq);
    [LibraryImport(Library)] public static partial int mosquitto_loop_stop(nint mosq, [MarshalAs(UnmanagedType.U1)] bool force);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mosquitto_publish_v5(nint mosq, out int mid, string topic, int payloadLength, ReadOnlySpan<byte> payload, int qos,
        [MarshalAs(UnmanagedType.U1)] bool retain, nint properties);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mosquitto_subscribe_v5(nint mosq, out int mid, string filter, int qos, int options, nint properties);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mosquitto_unsubscribe_v5(nint mosq, out int mid, string filter, nint properties);
    [LibraryImport(Library)] public static partial byte* mosquitto_strerror(int error);
    [LibraryImport(Library)] public static partial byte* mosquitto_reason_string(int reason);

    [LibraryImport(Library)] public static partial void mosquitto_connect_v5_callback_set(nint mosq, delegate* unmanaged[Cdecl]<nint, nint, int, int, nint, void> callback);
    [LibraryImport(Library)] public static partial void mosquitto_disconnect_v5_callback_set(nint mosq, delegate* unmanaged[Cdecl]<nint, nint, int, nint, void> callback);
    [LibraryImport(Library)] public static partial void mosquitto_publish_v5_callback_set(nint mosq, delegate* unmanaged[Cdecl]<nint, nint, int, int, nint, void> callback);
    [LibraryImport(Library)] public static partial void mosquitto_subscribe_v5_callback_set(nint mosq, delegate* unmanaged[Cdecl]<nint, nint, int, int, int*, nint, void> callback);
    [LibraryImport(Library)] public static partial void mosquitto_message_v5_callback_set(nint mosq, delegate* unmanaged[Cdecl]<nint, nint, MosquittoMessage*, nint, void> callback);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mosquitto_property_add_string(ref nint properties, int identifier, string value);
    [LibraryImport(Library)] public static partial int mosquitto_property_add_binary(ref nint properties, int identifier, ReadOnlySpan<byte> value, ushort length);
    [LibraryImport(Library)] public static partial int mosquitto_property_add_int32(ref nint properties, int identifier, uint value);
    [LibraryImport(Library)] public static partial void mosquitto_property_free_all(ref nint properties);
    [LibraryImport(Library)] public static partial nint mosquitto_property_read_string(nint properties, int identifier, byte** value, [MarshalAs(UnmanagedType.U1)] bool skipFirst);
    [LibraryImport(Library)] public static partial nint mosquitto_property_read_binary(nint properties, int identifier, byte** value, ushort* length, [MarshalAs(UnmanagedType.U1)] bool skipFirst);

    public static string Error(int code) => code switch
    {
        0 => "success",
        _ => Marshal.PtrToStringUTF8((nint)mosquitto_strerror(code)) ?? $"error {code}",
    };

    public static string Reason(int code) => Marshal.PtrToStringUTF8((nint)mosquitto_reason_string(code)) ?? $"reason {code}";
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct MosquittoMessage
{
    public int MessageId;
    public byte* Topic;
    public byte* Payload;
    public int PayloadLength;
    public int Qos;
    public byte Retain;
}
