using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ConfigSpec.Transport.Mqtt;

public sealed unsafe partial class MqttClient
{
    private static void RegisterCallbacks(nint mosq)
    {
        MosquittoNative.mosquitto_connect_v5_callback_set(mosq, &OnConnect);
        MosquittoNative.mosquitto_disconnect_v5_callback_set(mosq, &OnDisconnect);
        MosquittoNative.mosquitto_publish_v5_callback_set(mosq, &OnPublish);
        MosquittoNative.mosquitto_subscribe_v5_callback_set(mosq, &OnSubscribe);
        MosquittoNative.mosquitto_message_v5_callback_set(mosq, &OnMessage);
    }

    // --- callbacks: run on libmosquitto's network thread ---

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnConnect(nint mosq, nint obj, int reason, int flags, nint properties)
    {
        var client = From(obj);
        if (client is null)
        {
            return;
        }

        if (reason == 0)
        {
            client._isConnected = true;
            // Re-establish every subscription (a clean start drops them on the broker).
            foreach (var (filter, qos) in client._subscriptions)
            {
                _ = MosquittoNative.mosquitto_subscribe_v5(mosq, out _, filter, qos, 0, 0);
            }

            client.ConnectionChanged?.Invoke(true);
        }

        client._connected.TrySetResult(reason);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnDisconnect(nint mosq, nint obj, int reason, nint properties)
    {
        var client = From(obj);
        if (client is null)
        {
            return;
        }

        var was = client._isConnected;
        client._isConnected = false;
        if (client._connected.Task.IsCompleted)
        {
            client._connected = NewSignal();
        }

        // Acks for what was in flight will not come on this connection: fail them so callers can retry.
        lock (client._gate)
        {
            foreach (var mid in client._pending.Keys)
            {
                if (client._pending.TryRemove(mid, out var signal))
                {
                    signal.TrySetException(new MqttException($"connection to broker {client._options.Broker} lost before the broker acknowledged"));
                }
            }
        }

        if (was)
        {
            client.ConnectionChanged?.Invoke(false);
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnPublish(nint mosq, nint obj, int mid, int reason, nint properties) => Complete(obj, mid, reason);

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnSubscribe(nint mosq, nint obj, int mid, int count, int* granted, nint properties) =>
        Complete(obj, mid, count > 0 ? granted[0] : 0);

    private static void Complete(nint obj, int mid, int result)
    {
        var client = From(obj);
        if (client is null)
        {
            return;
        }

        lock (client._gate)
        {
            if (client._pending.TryRemove(mid, out var signal))
            {
                signal.TrySetResult(result);
            }
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnMessage(nint mosq, nint obj, MosquittoMessage* message, nint properties)
    {
        var client = From(obj);
        if (client is null)
        {
            return;
        }

        var topic = Marshal.PtrToStringUTF8((nint)message->Topic) ?? string.Empty;
        var payload = new ReadOnlySpan<byte>(message->Payload, message->PayloadLength).ToArray();
        string? responseTopic = null;
        byte[]? correlation = null;
        byte* text = null;
        if (MosquittoNative.mosquitto_property_read_string(properties, MosquittoNative.PropertyResponseTopic, &text, false) != 0 && text != null)
        {
            responseTopic = Marshal.PtrToStringUTF8((nint)text);
            NativeMemory.Free(text);
        }

        byte* data = null;
        ushort length = 0;
        if (MosquittoNative.mosquitto_property_read_binary(properties, MosquittoNative.PropertyCorrelationData, &data, &length, false) != 0 && data != null)
        {
            correlation = new ReadOnlySpan<byte>(data, length).ToArray();
            NativeMemory.Free(data);
        }

        client._messages.Writer.TryWrite(new MqttMessage(topic, payload, message->Qos, message->Retain != 0, responseTopic, correlation));
    }
}
