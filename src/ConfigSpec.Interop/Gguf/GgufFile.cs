using System.Buffers.Binary;
using System.Text;

namespace ConfigSpec.Interop.Gguf;

/// <summary>One tensor as described in a GGUF header.</summary>
public sealed record GgufTensorInfo(string Name, IReadOnlyList<long> Dimensions, int TypeId, ulong Offset, long ByteSize)
{
    public string TypeName => GgmlTypes.Name(TypeId);

    public long ElementCount => Dimensions.Aggregate(1L, (a, d) => a * d);
}

/// <summary>
/// A validating reader of the GGUF container (versions 2 and 3): header, metadata key/values, tensor
/// table, and the bounds of every tensor's data against the file length. It reads only the header and
/// the file length, so a truncated or foreign file is rejected before llama.cpp sees it.
/// </summary>
public sealed class GgufFile
{
    private const uint Magic = 0x46554747; // "GGUF" little-endian
    private const int MaxStringBytes = 1 << 24;
    private const long MaxCount = 1 << 24;

    private GgufFile(string path, uint version, long fileLength, IReadOnlyDictionary<string, object> metadata,
        IReadOnlyList<GgufTensorInfo> tensors, long dataOffset)
    {
        Path = path;
        Version = version;
        FileLength = fileLength;
        Metadata = metadata;
        Tensors = tensors;
        DataOffset = dataOffset;
    }

    public string Path { get; }

    public uint Version { get; }

    public long FileLength { get; }

    /// <summary>Scalar and string values as read; arrays are kept as <c>object[]</c> of their elements (strings as string).</summary>
    public IReadOnlyDictionary<string, object> Metadata { get; }

    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    public long DataOffset { get; }

    public string? Architecture => Metadata.TryGetValue("general.architecture", out var v) ? v as string : null;

    public string? GetString(string key) => Metadata.TryGetValue(key, out var v) ? v as string : null;

    public long? GetInteger(string key) => Metadata.TryGetValue(key, out var v) ? v switch
    {
        byte b => b, sbyte sb => sb, ushort us => us, short s => s, uint ui => ui, int i => i,
        ulong ul => (long)ul, long l => l, _ => null,
    } : null;

    /// <summary>Reads and validates a GGUF file; throws <see cref="ModelFileException"/> naming the file and the fault.</summary>
    public static GgufFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new ModelFileException(path, Directory.Exists(path) ? "is a directory, not a GGUF file" : "does not exist");
        }

        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            var reader = new Reader(stream, path);
            return Parse(reader, path, stream.Length);
        }
        catch (EndOfStreamException)
        {
            throw new ModelFileException(path, "is truncated: the GGUF header ends before its declared contents");
        }
        catch (IOException ex)
        {
            throw new ModelFileException(path, $"cannot be read ({ex.Message})");
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new ModelFileException(path, $"cannot be read ({ex.Message})");
        }
    }

    private static GgufFile Parse(Reader reader, string path, long fileLength)
    {
        if (fileLength < 24)
        {
            throw new ModelFileException(path, $"is not a GGUF model ({fileLength} bytes, too short for a GGUF header)");
        }

        var magic = reader.U32();
        if (magic != Magic)
        {
            throw new ModelFileException(path, $"is not a GGUF model (magic 0x{magic:X8}, expected 'GGUF')");
        }

        var version = reader.U32();
        if (version is not (2 or 3))
        {
            throw new ModelFileException(path, $"has unsupported GGUF version {version} (supported: 2, 3)");
        }

        var tensorCount = reader.Count("tensor count");
        var kvCount = reader.Count("metadata count");
        var metadata = new Dictionary<string, object>(StringComparer.Ordinal);
        for (long i = 0; i < kvCount; i++)
        {
            var key = reader.String();
            var type = reader.U32();
            metadata[key] = reader.Value(type, key);
        }

        var alignment = 32L;
        if (metadata.TryGetValue("general.alignment", out var a) && a is uint ua)
        {
            if (ua == 0 || (ua & (ua - 1)) != 0)
            {
                throw new ModelFileException(path, $"has invalid general.alignment {ua} (must be a power of two)");
            }

            alignment = ua;
        }

        var infos = new List<(string Name, long[] Dims, int Type, ulong Offset)>((int)tensorCount);
        for (long i = 0; i < tensorCount; i++)
        {
            var name = reader.String();
            var dimCount = reader.U32();
            if (dimCount is 0 or > 4)
            {
                throw new ModelFileException(path, $"tensor '{name}' has {dimCount} dimensions (1 to 4 allowed)");
            }

            var dims = new long[dimCount];
            for (var d = 0; d < dimCount; d++)
            {
                var value = reader.U64();
                if (value == 0 || value > long.MaxValue / 2)
                {
                    throw new ModelFileException(path, $"tensor '{name}' has an invalid dimension {value}");
                }

                dims[d] = (long)value;
            }

            infos.Add((name, dims, (int)reader.U32(), reader.U64()));
        }

        var dataOffset = (reader.Position + alignment - 1) / alignment * alignment;
        var tensors = new List<GgufTensorInfo>(infos.Count);
        foreach (var (name, dims, type, offset) in infos)
        {
            var size = GgmlTypes.ByteSize(type, dims);
            if (size is null && !GgmlTypes.IsKnown(type))
            {
                // A newer build may know this type; bounds are still checked for the offset itself.
                size = 0;
            }
            else if (size is null)
            {
                throw new ModelFileException(path, $"tensor '{name}' of type {GgmlTypes.Name(type)} has a first dimension {dims[0]} that is not a multiple of its block size");
            }

            var end = dataOffset + (long)offset + size.Value;
            if (offset > (ulong)fileLength || end > fileLength)
            {
                throw new ModelFileException(path,
                    $"is truncated or corrupt: tensor '{name}' ends at byte {end} but the file has {fileLength} bytes");
            }

            tensors.Add(new GgufTensorInfo(name, dims, type, offset, size.Value));
        }

        return new GgufFile(path, version, fileLength, metadata, tensors, dataOffset);
    }

    private sealed class Reader(Stream stream, string path)
    {
        private readonly byte[] _buffer = new byte[8];

        public long Position => stream.Position;

        public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Fill(4));

        public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Fill(8));

        public long Count(string what)
        {
            var value = U64();
            if (value > MaxCount)
            {
                throw new ModelFileException(path, $"is corrupt: {what} {value} is implausibly large");
            }

            return (long)value;
        }

        public string String()
        {
            var length = U64();
            if (length > MaxStringBytes || (long)length > stream.Length - stream.Position)
            {
                throw new ModelFileException(path, $"is corrupt: a string of {length} bytes runs past the end of the header");
            }

            var bytes = new byte[(int)length];
            stream.ReadExactly(bytes);
            return Encoding.UTF8.GetString(bytes);
        }

        public object Value(uint type, string key) => type switch
        {
            0 => Fill(1)[0],
            1 => (sbyte)Fill(1)[0],
            2 => BinaryPrimitives.ReadUInt16LittleEndian(Fill(2)),
            3 => BinaryPrimitives.ReadInt16LittleEndian(Fill(2)),
            4 => U32(),
            5 => BinaryPrimitives.ReadInt32LittleEndian(Fill(4)),
            6 => BinaryPrimitives.ReadSingleLittleEndian(Fill(4)),
            7 => Fill(1)[0] != 0,
            8 => String(),
            9 => Array(key),
            10 => U64(),
            11 => BinaryPrimitives.ReadInt64LittleEndian(Fill(8)),
            12 => BinaryPrimitives.ReadDoubleLittleEndian(Fill(8)),
            _ => throw new ModelFileException(path, $"is corrupt: metadata '{key}' has unknown value type {type}"),
        };

        private object[] Array(string key)
        {
            var elementType = U32();
            if (elementType == 9)
            {
                throw new ModelFileException(path, $"is corrupt: metadata '{key}' is a nested array");
            }

            var count = Count($"length of array '{key}'");
            var values = new object[count];
            for (long i = 0; i < count; i++)
            {
                values[i] = Value(elementType, key);
            }

            return values;
        }

        private ReadOnlySpan<byte> Fill(int count)
        {
            stream.ReadExactly(_buffer, 0, count);
            return _buffer.AsSpan(0, count);
        }
    }
}
