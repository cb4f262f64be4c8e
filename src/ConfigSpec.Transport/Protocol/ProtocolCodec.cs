using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Transport.Protocol;

/// <summary>
/// The compact binary encoding of the verification protocol (see Protocol/README.md). Every frame starts
/// with 'C' 'S', the schema version and the message type; integers are LEB128 varints (token ids zigzag-encoded
/// so that negative ids survive to be refused with a clear error), floats are IEEE-754 little-endian, strings are
/// a varint length and UTF-8. Decoding never throws anything but <see cref="ProtocolException"/>.
/// Version 2 adds pipelined rounds: a frame is written as version 2 only when it uses them (an open or an answer with a
/// pipeline above 1, a round with a base), so a board and a verifier of version 1 keep working with this build.
/// </summary>
public static class ProtocolCodec
{
    /// <summary>The newest schema version this build reads and writes.</summary>
    public const byte Version = 2;

    /// <summary>The first schema version, still read and written.</summary>
    public const byte Version1 = 1;

    /// <summary>Flags of a version 2 round.</summary>
    private const ulong ChainedFlag = 1, ChainFollowsFlag = 2;
    public const int MaxPayloadBytes = 1 << 20;
    public const int MaxPromptTokens = 1 << 16;
    public const int MaxDraftTokens = 255;
    public const int MaxDistributionEntries = 1 << 18;
    private const int MaxStringBytes = 4096;

    public static byte[] Encode(ProtocolMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var writer = new ArrayBufferWriter<byte>(64);
        var version = VersionOf(message);
        writer.Write([(byte)'C', (byte)'S', version, (byte)message.Type]);
        switch (message)
        {
            case OpenSessionMessage m:
                WriteString(writer, m.TargetId);
                WriteString(writer, m.DeviceId);
                WriteString(writer, m.VocabularyFingerprint);
                WriteFloat(writer, m.Sampling.Temperature);
                WriteVarint(writer, (ulong)m.Sampling.TopK);
                WriteUInt64(writer, m.Sampling.Seed);
                WriteTokens(writer, m.PromptTokens);
                if (version >= 2)
                {
                    WriteVarint(writer, (ulong)m.Pipeline);
                }

                break;
            case SessionOpenedMessage m:
                WriteString(writer, m.SessionId);
                WriteString(writer, m.InstanceId);
                WriteVarint(writer, (ulong)m.VocabularySize);
                WriteVarint(writer, (ulong)m.ContextLength);
                if (version >= 2)
                {
                    WriteVarint(writer, (ulong)m.Pipeline);
                }

                break;
            case VerifyMessage m:
                WriteString(writer, m.SessionId);
                WriteVarint(writer, (ulong)m.Round);
                WriteVarint(writer, (ulong)m.Position);
                if (version >= 2)
                {
                    WriteVarint(writer, (ulong)m.Base);
                    WriteVarint(writer, (m.Chained ? ChainedFlag : 0) | (m.ChainFollows ? ChainFollowsFlag : 0));
                }

                WriteTokens(writer, m.DraftTokens);
                WriteVarint(writer, m.DraftDistributions is null ? 0UL : 1UL);
                foreach (var q in m.DraftDistributions ?? [])
                {
                    WriteVarint(writer, (ulong)q.Tokens.Length);
                    for (var i = 0; i < q.Tokens.Length; i++)
                    {
                        WriteVarint(writer, ZigZag(q.Tokens[i]));
                        WriteFloat(writer, q.Probabilities[i]);
                    }
                }

                break;
            case VerifyResultMessage m:
                WriteString(writer, m.SessionId);
                WriteVarint(writer, (ulong)m.Round);
                WriteVarint(writer, (ulong)m.Accepted);
                WriteVarint(writer, ZigZag(m.NextToken));
                WriteVarint(writer, (ulong)Math.Max(0, m.QueueMicros));
                WriteVarint(writer, (ulong)Math.Max(0, m.ComputeMicros));
                break;
            case ErrorMessage m:
                WriteVarint(writer, (ulong)m.Code);
                WriteString(writer, m.Message.Length > 1000 ? m.Message[..1000] : m.Message);
                WriteString(writer, m.SessionId);
                break;
            case CloseSessionMessage m:
                WriteString(writer, m.SessionId);
                break;
            default:
                throw new ArgumentException($"unknown message {message.GetType().Name}", nameof(message));
        }

        if (writer.WrittenCount > MaxPayloadBytes)
        {
            throw new ProtocolException(ProtocolErrorCode.Oversize, $"encoded {message.Type} is {writer.WrittenCount} bytes, over the {MaxPayloadBytes}-byte limit");
        }

        return writer.WrittenSpan.ToArray();
    }

    /// <summary>The schema version a message needs: 2 only when it uses pipelining.</summary>
    public static byte VersionOf(ProtocolMessage message) => message switch
    {
        OpenSessionMessage { Pipeline: > 1 } or SessionOpenedMessage { Pipeline: > 1 } or VerifyMessage { Pipelined: true } => Version,
        _ => Version1,
    };

    /// <summary>Decodes a frame of any version up to <paramref name="maxVersion"/> (a verifier limited to version 1 refuses version 2 as a version 1 build does).</summary>
    public static ProtocolMessage Decode(ReadOnlySpan<byte> payload, byte maxVersion = Version)
    {
        if (payload.Length > MaxPayloadBytes)
        {
            throw new ProtocolException(ProtocolErrorCode.Oversize, $"payload of {payload.Length} bytes is over the {MaxPayloadBytes}-byte limit");
        }

        if (payload.Length < 4 || payload[0] != 'C' || payload[1] != 'S')
        {
            throw new ProtocolException(ProtocolErrorCode.Malformed, "payload is not a ConfigSpec verification frame (no 'CS' header)");
        }

        var version = payload[2];
        if (version < Version1 || version > Math.Min(maxVersion, Version))
        {
            throw new ProtocolException(ProtocolErrorCode.UnsupportedVersion,
                $"schema version {version} is not supported (this {(maxVersion < Version ? "verifier" : "build")} speaks versions 1..{Math.Min(maxVersion, Version)})");
        }

        var reader = new Reader(payload[4..]);
        ProtocolMessage message = (MessageType)payload[3] switch
        {
            MessageType.OpenSession => new OpenSessionMessage(
                reader.String(), reader.String(), reader.String(),
                new SamplingSettings(reader.Float(), reader.Int(), reader.UInt64()),
                reader.Tokens(MaxPromptTokens, "prompt"), version >= 2 ? reader.Pipeline() : 1),
            MessageType.SessionOpened => new SessionOpenedMessage(reader.String(), reader.String(), reader.Int(), reader.Int(), version >= 2 ? reader.Pipeline() : 1),
            MessageType.Verify => ReadVerify(ref reader, version),
            MessageType.VerifyResult => new VerifyResultMessage(reader.String(), reader.Int(), reader.Int(), reader.Token(), reader.Long(), reader.Long()),
            MessageType.Error => new ErrorMessage(reader.ErrorCode(), reader.String(), reader.String()),
            MessageType.CloseSession => new CloseSessionMessage(reader.String()),
            _ => throw new ProtocolException(ProtocolErrorCode.Malformed, $"unknown message type {payload[3]}"),
        };

        if (!reader.AtEnd)
        {
            throw new ProtocolException(ProtocolErrorCode.Malformed, $"{message.Type} frame has {reader.Remaining} trailing bytes");
        }

        return message;
    }

    private static VerifyMessage ReadVerify(ref Reader reader, byte version)
    {
        var session = reader.String();
        var round = reader.Int();
        var position = reader.Int();
        int baseRound = -1;
        ulong flags = 0;
        if (version >= 2)
        {
            baseRound = reader.Int();
            flags = reader.Varint();
            if (flags > (ChainedFlag | ChainFollowsFlag))
            {
                throw new ProtocolException(ProtocolErrorCode.Malformed, $"round flags {flags} has unknown bits");
            }
        }

        var drafts = reader.Tokens(MaxDraftTokens, "draft");
        var hasDistributions = reader.Int();
        if (hasDistributions > 1)
        {
            throw new ProtocolException(ProtocolErrorCode.Malformed, "distribution flag must be 0 or 1");
        }

        SparseDistribution[]? distributions = null;
        if (hasDistributions == 1)
        {
            distributions = new SparseDistribution[drafts.Length];
            for (var i = 0; i < drafts.Length; i++)
            {
                var count = reader.Count(MaxDistributionEntries, "distribution");
                var tokens = new int[count];
                var probabilities = new float[count];
                for (var j = 0; j < count; j++)
                {
                    tokens[j] = reader.Token();
                    probabilities[j] = reader.Float();
                }

                distributions[i] = new SparseDistribution(tokens, probabilities);
            }
        }

        return new VerifyMessage(session, round, position, drafts, distributions, baseRound, (flags & ChainedFlag) != 0, (flags & ChainFollowsFlag) != 0);
    }

    private static ulong ZigZag(int value) => (ulong)(uint)((value << 1) ^ (value >> 31));

    private static void WriteVarint(ArrayBufferWriter<byte> writer, ulong value)
    {
        var span = writer.GetSpan(10);
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        writer.Advance(i);
    }

    private static void WriteFloat(ArrayBufferWriter<byte> writer, float value)
    {
        BinaryPrimitives.WriteSingleLittleEndian(writer.GetSpan(4), value);
        writer.Advance(4);
    }

    private static void WriteUInt64(ArrayBufferWriter<byte> writer, ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(writer.GetSpan(8), value);
        writer.Advance(8);
    }

    private static void WriteString(ArrayBufferWriter<byte> writer, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        WriteVarint(writer, (ulong)bytes.Length);
        writer.Write(bytes);
    }

    private static void WriteTokens(ArrayBufferWriter<byte> writer, int[] tokens)
    {
        WriteVarint(writer, (ulong)tokens.Length);
        foreach (var token in tokens)
        {
            WriteVarint(writer, ZigZag(token));
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _offset;

        public readonly bool AtEnd => _offset == _data.Length;

        public readonly int Remaining => _data.Length - _offset;

        public ulong Varint()
        {
            ulong result = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                if (_offset >= _data.Length)
                {
                    throw Truncated();
                }

                var b = _data[_offset++];
                result |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return result;
                }
            }

            throw new ProtocolException(ProtocolErrorCode.Malformed, "varint longer than 10 bytes");
        }

        public int Int()
        {
            var value = Varint();
            return value <= int.MaxValue ? (int)value : throw new ProtocolException(ProtocolErrorCode.Malformed, $"integer {value} out of range");
        }

        public long Long()
        {
            var value = Varint();
            return value <= long.MaxValue ? (long)value : throw new ProtocolException(ProtocolErrorCode.Malformed, $"integer {value} out of range");
        }

        public int Token()
        {
            var value = Varint();
            if (value > uint.MaxValue)
            {
                throw new ProtocolException(ProtocolErrorCode.Malformed, $"token field {value} out of range");
            }

            var raw = (uint)value;
            return (int)(raw >> 1) ^ -(int)(raw & 1);
        }

        public int Count(int limit, string what)
        {
            var count = Varint();
            if (count > (ulong)limit)
            {
                throw new ProtocolException(ProtocolErrorCode.Oversize, $"{what} of {count} entries is over the limit of {limit}");
            }

            // Each entry takes at least one byte, so a count beyond the remaining bytes is a lie.
            if (count > (ulong)Remaining)
            {
                throw Truncated();
            }

            return (int)count;
        }

        public int[] Tokens(int limit, string what)
        {
            var tokens = new int[Count(limit, what)];
            for (var i = 0; i < tokens.Length; i++)
            {
                tokens[i] = Token();
            }

            return tokens;
        }

        public float Float()
        {
            var span = Take(4);
            return BinaryPrimitives.ReadSingleLittleEndian(span);
        }

        public ulong UInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

        public string String()
        {
            var length = Varint();
            if (length > MaxStringBytes)
            {
                throw new ProtocolException(ProtocolErrorCode.Oversize, $"string of {length} bytes is over the limit of {MaxStringBytes}");
            }

            var bytes = Take((int)length);
            try
            {
                return new UTF8Encoding(false, true).GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                throw new ProtocolException(ProtocolErrorCode.Malformed, "string is not valid UTF-8");
            }
        }

        public int Pipeline()
        {
            var depth = Int();
            return depth is >= 1 and <= 255 ? depth : throw new ProtocolException(ProtocolErrorCode.Malformed, $"pipeline depth {depth} is out of range (1..255)");
        }

        public ProtocolErrorCode ErrorCode()
        {
            var code = Int();
            return Enum.IsDefined((ProtocolErrorCode)code) ? (ProtocolErrorCode)code
                : throw new ProtocolException(ProtocolErrorCode.Malformed, $"unknown error code {code}");
        }

        private ReadOnlySpan<byte> Take(int count)
        {
            if (count > Remaining)
            {
                throw Truncated();
            }

            var span = _data.Slice(_offset, count);
            _offset += count;
            return span;
        }

        private static ProtocolException Truncated() => new(ProtocolErrorCode.Malformed, "frame is truncated");
    }
}
