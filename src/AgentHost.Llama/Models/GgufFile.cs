using System.Buffers.Binary;
using System.Collections.ObjectModel;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace AgentHost.Llama.Models;

/// <summary>
/// The header of a GGUF model file (version, metadata and tensor descriptions), read and checked in managed
/// code so that a missing, foreign, damaged or half-downloaded file gives one clear
/// <see cref="AgentHostException"/> before llama.cpp ever opens it.
/// </summary>
/// <remarks>
/// Only the header is read (plus at most one 64 KiB read-ahead buffer); tensor data is never loaded. Every
/// declared count and length is checked against the bytes the file still holds before anything is allocated,
/// so a corrupt file cannot cause an out-of-memory or a long loop. The checks follow llama.cpp's own
/// <c>gguf.cpp</c>: versions 2 and 3, no duplicate keys or tensor names, no nested arrays, a power-of-two
/// <c>general.alignment</c> (uint32, default 32), at most 4 dimensions, rows a multiple of the type's block
/// size, tensor offsets aligned, and every tensor's data inside the file.
/// </remarks>
public sealed class GgufFile
{
    private const uint GgufMagic = 0x46554747;     // "GGUF" read as a little-endian uint32
    private const uint GgmlMagic = 0x67676d6c;     // legacy "lmgg" (ggml), unversioned
    private const uint GgmfMagic = 0x67676d66;     // legacy "fmgg" (ggmf)
    private const uint GgjtMagic = 0x67676a74;     // legacy "tjgg" (ggjt)
    private const uint DefaultAlignment = 32;
    private const int MaxDimensions = 4;           // GGML_MAX_DIMS
    private const int MaxTensorNameBytes = 63;     // GGML_MAX_NAME (64) including the terminating NUL
    private const string AlignmentKey = "general.alignment";

    // The fewest bytes one metadata entry or tensor description can take, to bound declared counts.
    private const int MinMetadataEntryBytes = 8 + 1 + 4 + 1;   // key length, 1-byte key, value type, 1-byte value
    private const int MinTensorInfoBytes = 8 + 1 + 4 + 4 + 8;  // name length, 1-byte name, n_dims, type, offset

    private readonly Dictionary<string, int> _invalidUtf8;

    private GgufFile(string path, uint version, Dictionary<string, object> metadata, GgufTensorInfo[] tensors, long dataOffset,
        Dictionary<string, int> invalidUtf8)
    {
        _invalidUtf8 = invalidUtf8;
        Path = path;
        Version = version;
        Metadata = new ReadOnlyDictionary<string, object>(metadata);
        Tensors = Array.AsReadOnly(tensors);
        DataOffset = dataOffset;
        Architecture = GetString("general.architecture");
    }

    /// <summary>The full path of the file that was read.</summary>
    public string Path { get; }

    /// <summary>The GGUF format version: 2 or 3 (version 1 and unknown versions are rejected).</summary>
    public uint Version { get; }

    /// <summary>
    /// All metadata entries by key. Scalars are boxed as their .NET type (<see cref="byte"/>, <see cref="sbyte"/>,
    /// <see cref="ushort"/>, <see cref="short"/>, <see cref="uint"/>, <see cref="int"/>, <see cref="ulong"/>,
    /// <see cref="long"/>, <see cref="float"/>, <see cref="double"/>, <see cref="bool"/>, <see cref="string"/>);
    /// arrays are typed .NET arrays of those (<c>string[]</c>, <c>int[]</c>, <c>float[]</c>, ...). Strings are
    /// decoded as UTF-8, invalid sequences becoming U+FFFD.
    /// </summary>
    public IReadOnlyDictionary<string, object> Metadata { get; }

    /// <summary>The tensors described in the header, in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>Byte offset in the file where tensor data starts (the end of the header, aligned up to <c>general.alignment</c>).</summary>
    public long DataOffset { get; }

    /// <summary>The model architecture (<c>general.architecture</c>, e.g. <c>llama</c>), or null when absent.</summary>
    public string? Architecture { get; }

    /// <summary>Reads and validates the header of a GGUF file.</summary>
    /// <param name="path">Path of the model file.</param>
    /// <returns>The header; the file is closed again.</returns>
    /// <exception cref="AgentHostException">
    /// <see cref="ErrorKind.ModelNotFound"/> when the file does not exist; <see cref="ErrorKind.InvalidModelFile"/>
    /// when it is a directory, unreadable, not GGUF, of an unsupported version, truncated or corrupt;
    /// <see cref="ErrorKind.InvalidArgument"/> when the path is empty or malformed.
    /// </exception>
    public static GgufFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (string.IsNullOrWhiteSpace(path))
            throw new AgentHostException(ErrorKind.InvalidArgument, "The model file path is empty.");

        string fullPath;
        try
        {
            fullPath = System.IO.Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Model file path '{path}' is not a valid path.", e);
        }

        if (Directory.Exists(fullPath))
            throw new AgentHostException(ErrorKind.InvalidModelFile, $"Model file '{fullPath}' is a directory, not a GGUF file.");
        if (!File.Exists(fullPath))
            throw new AgentHostException(ErrorKind.ModelNotFound, $"Model file '{fullPath}' does not exist.");
        // A FIFO would block the open below forever and a device never ends: only regular files (after links) are read.
        if (BoundedFile.FileType(fullPath) is { } type && type != 0x8000)
            throw Invalid(fullPath, $"is a {BoundedFile.TypeName(type)}, not a regular file; only regular files are loaded.");

        FileStream stream;
        try
        {
            stream = new FileStream(fullPath, new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,
                Share = FileShare.Read | FileShare.Delete,
                BufferSize = 0, // the reader below does its own buffering
                Options = FileOptions.SequentialScan,
            });
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new AgentHostException(ErrorKind.ModelNotFound, $"Model file '{fullPath}' does not exist.", e);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw CannotRead(fullPath, e);
        }

        using (stream)
        {
            try
            {
                return Parse(fullPath, stream);
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                throw CannotRead(fullPath, e);
            }
        }
    }

    /// <summary>Gets a string metadata value.</summary>
    /// <param name="key">The metadata key, e.g. <c>tokenizer.ggml.model</c>.</param>
    /// <returns>The value, or null when the key is absent or not a string.</returns>
    public string? GetString(string key) =>
        Metadata.TryGetValue(key, out var value) ? value as string : null;

    /// <summary>Gets an integer metadata value of any integer type, widened to <see cref="long"/>.</summary>
    /// <param name="key">The metadata key, e.g. <c>llama.context_length</c>.</param>
    /// <returns>
    /// The value, or null when the key is absent, not an integer scalar (booleans are not integers), or a
    /// <see cref="ulong"/> above <see cref="long.MaxValue"/>.
    /// </returns>
    public long? GetInteger(string key)
    {
        if (!Metadata.TryGetValue(key, out var value))
            return null;
        return value switch
        {
            byte v => v,
            sbyte v => v,
            ushort v => v,
            short v => v,
            uint v => v,
            int v => v,
            long v => v,
            ulong v when v <= long.MaxValue => (long)v,
            _ => null,
        };
    }

    /// <summary>Gets a string-array metadata value.</summary>
    /// <param name="key">The metadata key, e.g. <c>tokenizer.ggml.tokens</c>.</param>
    /// <returns>The array (not a copy), or null when the key is absent or not a string array.</returns>
    public string[]? GetStringArray(string key) =>
        Metadata.TryGetValue(key, out var value) ? value as string[] : null;

    /// <summary>Gets an int32-array metadata value.</summary>
    /// <param name="key">The metadata key, e.g. <c>tokenizer.ggml.token_type</c>.</param>
    /// <returns>The array (not a copy), or null when the key is absent or not an int32 array.</returns>
    public int[]? GetInt32Array(string key) =>
        Metadata.TryGetValue(key, out var value) ? value as int[] : null;

    /// <summary>
    /// Where the metadata value under <paramref name="key"/> held bytes that are not valid UTF-8 (decoded as U+FFFD in
    /// <see cref="Metadata"/>, so two different byte strings can read back equal): the index of the first such string
    /// of an array, -1 for a string scalar, or null when every string of that key was valid UTF-8.
    /// </summary>
    /// <param name="key">The metadata key, e.g. <c>tokenizer.ggml.tokens</c>.</param>
    public int? FirstInvalidUtf8(string key) => _invalidUtf8.TryGetValue(key, out var index) ? index : null;

    /// <summary>The tensor named <paramref name="name"/>, or null.</summary>
    public GgufTensorInfo? FindTensor(string name)
    {
        foreach (var tensor in Tensors)
        {
            if (tensor.Name == name)
                return tensor;
        }
        return null;
    }

    /// <summary>
    /// Reads rows of a matrix tensor as floats, dequantized (see <see cref="GgmlDequantizer"/>). A row is the
    /// innermost dimension (for an embedding matrix: one token's vector); rows are counted over all outer dimensions.
    /// </summary>
    /// <param name="tensor">A tensor of this file.</param>
    /// <param name="firstRow">Index of the first row to read.</param>
    /// <param name="rowCount">Number of rows.</param>
    /// <returns>rowCount * rowLength floats, row after row.</returns>
    /// <exception cref="AgentHostException">The type cannot be dequantized, or the file changed since it was read.</exception>
    public float[] ReadRows(GgufTensorInfo tensor, long firstRow, int rowCount)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var rowLength = tensor.Dimensions.Length == 0 ? 1 : (long)tensor.Dimensions[0];
        var rows = RowCount(tensor);
        ArgumentOutOfRangeException.ThrowIfNegative(firstRow);
        ArgumentOutOfRangeException.ThrowIfNegative(rowCount);
        if (firstRow + rowCount > rows)
            throw new ArgumentOutOfRangeException(nameof(rowCount), $"Tensor '{tensor.Name}' has {rows} rows; rows {firstRow}..{firstRow + rowCount - 1} do not exist.");
        if (!GgmlDequantizer.Supports(tensor.Type) || !tensor.Type.TryGetBlockLayout(out var blockSize, out var typeSize))
            throw new AgentHostException(ErrorKind.InvalidModelFile, $"Tensor '{tensor.Name}' of '{Path}' has type {tensor.Type}, which cannot be read in managed code; supported are F32, F16, BF16, Q8_0 and Q4_0.");

        var rowBytes = rowLength / blockSize * typeSize;
        var bytes = new byte[checked(rowBytes * rowCount)];
        var values = new float[checked(rowLength * rowCount)];
        try
        {
            using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, bufferSize: 0);
            stream.Position = DataOffset + (long)tensor.Offset + firstRow * rowBytes;
            stream.ReadExactly(bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw CannotRead(Path, e);
        }
        for (var r = 0; r < rowCount; r++)
            GgmlDequantizer.Dequantize(tensor.Type, bytes.AsSpan((int)(r * rowBytes), (int)rowBytes), values.AsSpan((int)(r * rowLength), (int)rowLength));
        return values;
    }

    /// <summary>Number of rows of <paramref name="tensor"/>: the product of its outer dimensions.</summary>
    public static long RowCount(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        long rows = 1;
        for (var i = 1; i < tensor.Dimensions.Length; i++)
            rows *= (long)tensor.Dimensions[i];
        return rows;
    }

    private static GgufFile Parse(string path, FileStream stream)
    {
        var reader = new GgufReader(stream, path);
        var length = reader.Length;

        if (length == 0)
            throw Invalid(path, "is not a GGUF file: it is empty.");
        if (length < 4)
            throw Invalid(path, $"is not a GGUF file: it has only {length} bytes.");

        var magic = reader.ReadUInt32();
        if (magic != GgufMagic)
        {
            throw magic is GgmlMagic or GgmfMagic or GgjtMagic
                ? Invalid(path, "is not a GGUF file: it is in the legacy GGML/GGJT format, which llama.cpp no longer loads.")
                : Invalid(path, "is not a GGUF file: it does not start with the bytes 'GGUF'.");
        }

        var version = reader.ReadUInt32();
        if (version is not (2 or 3))
        {
            var swapped = BinaryPrimitives.ReverseEndianness(version);
            throw version == 1
                ? Invalid(path, "uses GGUF version 1, which llama.cpp no longer loads; only versions 2 and 3 are supported.")
                : swapped is 2 or 3
                    ? Invalid(path, $"is a big-endian GGUF file (version {swapped}), which cannot be loaded on this little-endian machine.")
                    : Invalid(path, $"uses GGUF version {version}, which is not supported; only versions 2 and 3 are.");
        }

        var tensorCount = reader.ReadUInt64();
        var metadataCount = reader.ReadUInt64();
        var afterHeader = reader.Remaining;
        if (metadataCount > (ulong)(afterHeader / MinMetadataEntryBytes))
        {
            throw Invalid(path,
                $"is truncated or corrupt: its header declares {metadataCount} metadata entries, more than the {afterHeader} bytes after the header can hold.");
        }
        if (tensorCount > (ulong)(afterHeader / MinTensorInfoBytes))
        {
            throw Invalid(path,
                $"is truncated or corrupt: its header declares {tensorCount} tensors, more than the {afterHeader} bytes after the header can hold.");
        }

        var invalidUtf8 = new Dictionary<string, int>(StringComparer.Ordinal);
        var metadata = ReadMetadata(reader, path, (int)metadataCount, invalidUtf8);
        var alignment = GetAlignment(metadata, path);
        var tensors = ReadTensorInfos(reader, path, (int)tensorCount, alignment);

        var dataOffset = AlignUp(reader.Position, alignment);
        CheckTensorDataInFile(tensors, dataOffset, length, path);

        return new GgufFile(path, version, metadata, tensors, dataOffset, invalidUtf8);
    }

    private static Dictionary<string, object> ReadMetadata(GgufReader reader, string path, int count, Dictionary<string, int> invalidUtf8)
    {
        var metadata = new Dictionary<string, object>(count, StringComparer.Ordinal);
        for (var i = 0; i < count; i++)
        {
            reader.SetPlace(GgufSection.Metadata, null);
            var key = reader.ReadString(out _, out _);
            if (key.Length == 0)
                throw Invalid(path, $"is not a valid GGUF file: metadata entry {i} has an empty key.");
            reader.SetPlace(GgufSection.Metadata, key);

            var type = (GgufValueType)reader.ReadUInt32();
            var value = ReadValue(reader, path, key, type, invalidUtf8);
            if (!metadata.TryAdd(key, value))
                throw Invalid(path, $"is not a valid GGUF file: it has the metadata key '{key}' twice.");
        }
        return metadata;
    }

    private static object ReadValue(GgufReader reader, string path, string key, GgufValueType type, Dictionary<string, int> invalidUtf8) => type switch
    {
        GgufValueType.UInt8 => reader.ReadByte(),
        GgufValueType.Int8 => (sbyte)reader.ReadByte(),
        GgufValueType.UInt16 => reader.ReadUInt16(),
        GgufValueType.Int16 => (short)reader.ReadUInt16(),
        GgufValueType.UInt32 => reader.ReadUInt32(),
        GgufValueType.Int32 => (int)reader.ReadUInt32(),
        GgufValueType.Float32 => BitConverter.UInt32BitsToSingle(reader.ReadUInt32()),
        GgufValueType.Bool => reader.ReadByte() != 0,
        GgufValueType.String => ReadScalarString(reader, key, invalidUtf8),
        GgufValueType.UInt64 => reader.ReadUInt64(),
        GgufValueType.Int64 => (long)reader.ReadUInt64(),
        GgufValueType.Float64 => BitConverter.UInt64BitsToDouble(reader.ReadUInt64()),
        GgufValueType.Array => ReadArray(reader, path, key, invalidUtf8),
        _ => throw Invalid(path, $"is not a valid GGUF file: metadata key '{key}' has the unknown value type {(uint)type}."),
    };

    private static string ReadScalarString(GgufReader reader, string key, Dictionary<string, int> invalidUtf8)
    {
        var text = reader.ReadString(out _, out var valid);
        if (!valid)
            invalidUtf8.TryAdd(key, -1);
        return text;
    }

    private static object ReadArray(GgufReader reader, string path, string key, Dictionary<string, int> invalidUtf8)
    {
        var elementType = (GgufValueType)reader.ReadUInt32();
        var count = reader.ReadUInt64();

        var elementBytes = elementType switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
            GgufValueType.String => 8, // at least its length prefix
            GgufValueType.Array => throw Invalid(path,
                $"is not a valid GGUF file: metadata key '{key}' holds an array of arrays, which llama.cpp does not support."),
            _ => throw Invalid(path,
                $"is not a valid GGUF file: metadata key '{key}' is an array of the unknown value type {(uint)elementType}."),
        };

        var remaining = reader.Remaining;
        if (count > (ulong)(remaining / elementBytes) || count > (ulong)Array.MaxLength)
        {
            throw Invalid(path,
                $"is truncated or corrupt: metadata key '{key}' declares an array of {count} elements, more than the {remaining} bytes left in the file can hold.");
        }

        var n = (int)count;
        switch (elementType)
        {
            case GgufValueType.UInt8: return reader.ReadArray<byte>(n);
            case GgufValueType.Int8: return reader.ReadArray<sbyte>(n);
            case GgufValueType.UInt16: return reader.ReadArray<ushort>(n);
            case GgufValueType.Int16: return reader.ReadArray<short>(n);
            case GgufValueType.UInt32: return reader.ReadArray<uint>(n);
            case GgufValueType.Int32: return reader.ReadArray<int>(n);
            case GgufValueType.Float32: return reader.ReadArray<float>(n);
            case GgufValueType.UInt64: return reader.ReadArray<ulong>(n);
            case GgufValueType.Int64: return reader.ReadArray<long>(n);
            case GgufValueType.Float64: return reader.ReadArray<double>(n);
            case GgufValueType.Bool:
            {
                var values = new bool[n];
                for (var i = 0; i < values.Length; i++)
                    values[i] = reader.ReadByte() != 0;
                return values;
            }
            default:
            {
                var values = new string[n];
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = reader.ReadString(out _, out var valid);
                    if (!valid)
                        invalidUtf8.TryAdd(key, i);
                }
                return values;
            }
        }
    }

    private static uint GetAlignment(Dictionary<string, object> metadata, string path)
    {
        if (!metadata.TryGetValue(AlignmentKey, out var value))
            return DefaultAlignment;
        if (value is not uint alignment)
            throw Invalid(path, $"is not a valid GGUF file: '{AlignmentKey}' must be a uint32 but is a {value.GetType().Name}.");
        if (alignment == 0 || (alignment & (alignment - 1)) != 0)
            throw Invalid(path, $"is not a valid GGUF file: '{AlignmentKey}' is {alignment}, not a power of two.");
        return alignment;
    }

    private static GgufTensorInfo[] ReadTensorInfos(GgufReader reader, string path, int count, uint alignment)
    {
        var tensors = new GgufTensorInfo[count];
        var names = new HashSet<string>(count, StringComparer.Ordinal);
        for (var i = 0; i < count; i++)
        {
            reader.SetPlace(GgufSection.TensorInfos, null);
            var name = reader.ReadString(out var nameBytes, out _);
            reader.SetPlace(GgufSection.TensorInfos, name);
            if (nameBytes > MaxTensorNameBytes)
                throw Invalid(path, $"is not a valid GGUF file: tensor name '{name}' is {nameBytes} bytes long, more than ggml's {MaxTensorNameBytes}.");
            if (!names.Add(name))
                throw Invalid(path, $"is not a valid GGUF file: it has the tensor name '{name}' twice.");

            var dimensionCount = reader.ReadUInt32();
            if (dimensionCount > MaxDimensions)
                throw Invalid(path, $"is not a valid GGUF file: tensor '{name}' has {dimensionCount} dimensions, more than ggml's {MaxDimensions}.");
            var dimensions = new ulong[dimensionCount];
            for (var d = 0; d < dimensions.Length; d++)
                dimensions[d] = reader.ReadUInt64();

            var type = (GgmlType)reader.ReadUInt32();
            var offset = reader.ReadUInt64();
            if (offset % alignment != 0)
                throw Invalid(path, $"is not a valid GGUF file: tensor '{name}' starts at data offset {offset}, not a multiple of the alignment {alignment}.");

            tensors[i] = new GgufTensorInfo(name, dimensions, type, offset, ComputeByteSize(path, name, dimensions, type));
        }
        return tensors;
    }

    private static long? ComputeByteSize(string path, string name, ulong[] dimensions, GgmlType type)
    {
        UInt128 elements = 1;
        foreach (var dimension in dimensions)
        {
            if (dimension <= long.MaxValue)
                elements *= dimension; // both factors are below 2^63 here, so the product fits in UInt128
            if (dimension > long.MaxValue || elements > long.MaxValue)
                throw Invalid(path, $"is not a valid GGUF file: tensor '{name}' has the shape [{string.Join(", ", dimensions)}], more elements than ggml can address.");
        }

        if (!type.TryGetBlockLayout(out var blockSize, out var typeSize))
            return null;

        var rowLength = dimensions.Length > 0 ? dimensions[0] : 1UL;
        if (rowLength % (ulong)blockSize != 0)
            throw Invalid(path, $"is not a valid GGUF file: tensor '{name}' has {rowLength} elements per row, not a multiple of the block size {blockSize} of type {type}.");

        var bytes = elements / (ulong)blockSize * (ulong)typeSize;
        if (bytes > long.MaxValue)
            throw Invalid(path, $"is not a valid GGUF file: tensor '{name}' has the shape [{string.Join(", ", dimensions)}], more bytes than a file can hold.");
        return (long)bytes;
    }

    private static void CheckTensorDataInFile(GgufTensorInfo[] tensors, long dataOffset, long length, string path)
    {
        UInt128 end = 0;
        foreach (var tensor in tensors)
        {
            if (tensor.ByteSize is { } byteSize)
            {
                var tensorEnd = (UInt128)(ulong)dataOffset + tensor.Offset + (ulong)byteSize;
                if (tensorEnd > end)
                    end = tensorEnd;
            }
        }
        if (end > (ulong)length)
            throw Invalid(path, $"is truncated: tensor data ends at {end} but the file has {length} bytes.");
    }

    private static long AlignUp(long position, uint alignment) =>
        (position + alignment - 1) / alignment * alignment;

    private static AgentHostException Invalid(string path, string problem) =>
        new(ErrorKind.InvalidModelFile, $"Model file '{path}' {problem}");

    private static AgentHostException CannotRead(string path, Exception e) =>
        new(ErrorKind.InvalidModelFile, $"Model file '{path}' cannot be read: {e.Message.TrimEnd('.')}.", e);

    private enum GgufSection
    {
        Header,
        Metadata,
        TensorInfos,
    }

    /// <summary>
    /// A forward-only little-endian reader over a file with its own buffer: values are decoded straight from
    /// the buffer (no per-value allocation), and every read first checks the bytes left in the file, so running
    /// out of file becomes a "truncated" error that says where.
    /// </summary>
    private sealed class GgufReader
    {
        private const int BufferSize = 64 * 1024;
        private const int MaxStringBytes = 256 * 1024 * 1024;

        private readonly FileStream _stream;
        private readonly string _path;
        private readonly byte[] _buffer = new byte[BufferSize];
        private long _bufferStart; // file position of _buffer[0]
        private int _position;     // next unread byte in _buffer
        private int _end;          // end of the valid bytes in _buffer
        private GgufSection _section = GgufSection.Header;
        private string? _item;

        public GgufReader(FileStream stream, string path)
        {
            _stream = stream;
            _path = path;
            Length = stream.Length;
        }

        public long Length { get; }

        public long Position => _bufferStart + _position;

        public long Remaining => Length - Position;

        /// <summary>Names what is being read, for the message when the file ends early.</summary>
        public void SetPlace(GgufSection section, string? item)
        {
            _section = section;
            _item = item;
        }

        public byte ReadByte()
        {
            Ensure(1);
            return _buffer[_position++];
        }

        public ushort ReadUInt16()
        {
            Ensure(2);
            var value = BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_position));
            _position += 2;
            return value;
        }

        public uint ReadUInt32()
        {
            Ensure(4);
            var value = BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(_position));
            _position += 4;
            return value;
        }

        public ulong ReadUInt64()
        {
            Ensure(8);
            var value = BinaryPrimitives.ReadUInt64LittleEndian(_buffer.AsSpan(_position));
            _position += 8;
            return value;
        }

        /// <summary>
        /// Reads a length-prefixed UTF-8 string; the only allocation is the string itself (unless it exceeds the buffer).
        /// <paramref name="validUtf8"/> says whether the bytes were valid UTF-8 (invalid sequences read as U+FFFD).
        /// </summary>
        public string ReadString(out int byteLength, out bool validUtf8)
        {
            var length = ReadUInt64();
            var remaining = Remaining;
            if (length > (ulong)remaining)
                throw Invalid(_path, $"is truncated or corrupt: a string in {Place()} declares {length} bytes, more than the {remaining} bytes left in the file.");
            if (length > MaxStringBytes)
                throw Invalid(_path, $"is not a valid GGUF file: a string in {Place()} declares {length} bytes, more than the {MaxStringBytes} bytes this reader accepts.");

            byteLength = (int)length;
            validUtf8 = true;
            if (byteLength == 0)
                return string.Empty;
            if (byteLength <= BufferSize)
            {
                Ensure(byteLength);
                validUtf8 = System.Text.Unicode.Utf8.IsValid(_buffer.AsSpan(_position, byteLength));
                var text = Encoding.UTF8.GetString(_buffer, _position, byteLength);
                _position += byteLength;
                return text;
            }

            var bytes = new byte[byteLength];
            ReadExactly(bytes);
            validUtf8 = System.Text.Unicode.Utf8.IsValid(bytes);
            return Encoding.UTF8.GetString(bytes);
        }

        /// <summary>Reads <paramref name="count"/> little-endian values into a new array (the caller checked the count against <see cref="Remaining"/>).</summary>
        public T[] ReadArray<T>(int count)
            where T : unmanaged
        {
            var values = new T[count];
            ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
            var elementSize = Unsafe.SizeOf<T>();
            if (!BitConverter.IsLittleEndian && elementSize > 1)
            {
                var bytes = MemoryMarshal.AsBytes(values.AsSpan());
                for (var i = 0; i < bytes.Length; i += elementSize)
                    bytes.Slice(i, elementSize).Reverse();
            }
            return values;
        }

        private void ReadExactly(Span<byte> destination)
        {
            if (destination.Length > Remaining)
                throw Truncated();
            while (!destination.IsEmpty)
            {
                if (_position == _end)
                    Fill();
                var count = Math.Min(_end - _position, destination.Length);
                _buffer.AsSpan(_position, count).CopyTo(destination);
                _position += count;
                destination = destination[count..];
            }
        }

        /// <summary>Makes at least <paramref name="count"/> (at most the buffer size) bytes available at <see cref="_position"/>.</summary>
        private void Ensure(int count)
        {
            if (_end - _position >= count)
                return;
            if (count > Remaining)
                throw Truncated();

            var kept = _end - _position;
            Buffer.BlockCopy(_buffer, _position, _buffer, 0, kept);
            _bufferStart += _position;
            _position = 0;
            _end = kept;
            while (_end < count)
            {
                var read = _stream.Read(_buffer, _end, _buffer.Length - _end);
                if (read == 0)
                    throw Truncated(); // the file shrank while being read
                _end += read;
            }
        }

        private void Fill()
        {
            _bufferStart += _end;
            _position = 0;
            _end = _stream.Read(_buffer, 0, _buffer.Length);
            if (_end == 0)
                throw Truncated();
        }

        private AgentHostException Truncated() =>
            Invalid(_path, $"is truncated: it ends after {Length} bytes, in the middle of {Place()}.");

        private string Place() => (_section, _item) switch
        {
            (GgufSection.Header, _) => "the header",
            (GgufSection.Metadata, null) => "the metadata",
            (GgufSection.Metadata, _) => $"the metadata (key '{_item}')",
            (GgufSection.TensorInfos, null) => "the tensor descriptions",
            _ => $"the tensor descriptions (tensor '{_item}')",
        };
    }
}
