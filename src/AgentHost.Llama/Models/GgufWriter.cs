using System.Runtime.InteropServices;
using System.Text;

namespace AgentHost.Llama.Models;

/// <summary>
/// Writes a GGUF (version 3) file: first declare the metadata and the tensors, then <see cref="WriteHeader"/>,
/// then stream the tensor data in declaration order, then <see cref="Complete"/>. Only the header is held in
/// memory, so a file of any size is written with bounded memory.
/// </summary>
/// <remarks>
/// Metadata values are typed by their .NET type, exactly as <see cref="GgufFile.Metadata"/> reads them back:
/// <see cref="byte"/>, <see cref="sbyte"/>, <see cref="ushort"/>, <see cref="short"/>, <see cref="uint"/>,
/// <see cref="int"/>, <see cref="ulong"/>, <see cref="long"/>, <see cref="float"/>, <see cref="double"/>,
/// <see cref="bool"/>, <see cref="string"/> and one-dimensional arrays of them. The alignment is
/// <c>general.alignment</c> when the metadata sets it (a power-of-two <see cref="uint"/>), else 32; every
/// tensor's data starts aligned and is padded with zeros to the alignment, as llama.cpp's <c>gguf.cpp</c> writes it.
/// </remarks>
public sealed class GgufWriter
{
    private const uint GgufMagic = 0x46554747; // "GGUF" as a little-endian uint32
    private const uint Version = 3;
    private const uint DefaultAlignment = 32;
    private const int MaxDimensions = 4;
    private const int MaxTensorNameBytes = 63;
    private const string AlignmentKey = "general.alignment";
    private static readonly byte[] _zeros = new byte[256];

    private readonly Stream _output;
    private readonly List<KeyValuePair<string, object>> _metadata = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly List<Tensor> _tensors = [];
    private readonly HashSet<string> _tensorNames = new(StringComparer.Ordinal);
    private uint _alignment = DefaultAlignment;
    private bool _headerWritten;
    private bool _completed;
    private int _current;         // the tensor whose data is being written
    private long _currentWritten; // bytes of it written so far
    private long _dataRemaining;  // tensor bytes still to come

    /// <summary>Creates a writer that writes to <paramref name="output"/> (from its current position; the caller owns the stream).</summary>
    /// <param name="output">A writable stream.</param>
    /// <exception cref="PlatformNotSupportedException">The machine is big-endian (GGUF data is little-endian).</exception>
    public GgufWriter(Stream output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!output.CanWrite)
            throw new ArgumentException("The stream is not writable.", nameof(output));
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("GgufWriter writes little-endian GGUF files on little-endian machines only.");
        _output = output;
    }

    /// <summary>Size of the whole file in bytes; known once <see cref="WriteHeader"/> has run.</summary>
    public long Length { get; private set; }

    /// <summary>Bytes written so far (header, data and padding).</summary>
    public long BytesWritten { get; private set; }

    /// <summary>Adds a metadata entry; entries are written in the order they are added.</summary>
    /// <param name="key">A non-empty key, unique in the file.</param>
    /// <param name="value">A value of one of the supported types (see the class remarks).</param>
    /// <exception cref="ArgumentException">The key is empty or repeated, the value's type is not supported, or <c>general.alignment</c> is not a power-of-two uint.</exception>
    public void AddMetadata(string key, object value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        ThrowIfHeaderWritten();
        if (TypeOf(value) is null)
            throw new ArgumentException($"Metadata '{key}' has the type {value.GetType().Name}, which GGUF cannot hold.", nameof(value));
        if (key == AlignmentKey)
        {
            if (value is not uint alignment || alignment == 0 || (alignment & (alignment - 1)) != 0)
                throw new ArgumentException($"'{AlignmentKey}' must be a power-of-two uint, not {value}.", nameof(value));
            _alignment = alignment;
        }
        if (!_keys.Add(key))
            throw new ArgumentException($"Metadata '{key}' was already added.", nameof(key));
        _metadata.Add(new(key, value));
    }

    /// <summary>Declares a tensor; its data is written later, in declaration order.</summary>
    /// <param name="name">A unique name of at most 63 UTF-8 bytes, e.g. <c>blk.0.attn_q.weight</c>.</param>
    /// <param name="type">The element type; it must have a known block layout.</param>
    /// <param name="dimensions">1 to 4 positive dimensions, innermost (row) first as ggml stores them.</param>
    /// <exception cref="ArgumentException">The name, type or shape is not valid GGUF.</exception>
    public void AddTensor(string name, GgmlType type, params ReadOnlySpan<ulong> dimensions)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ThrowIfHeaderWritten();
        if (Encoding.UTF8.GetByteCount(name) > MaxTensorNameBytes)
            throw new ArgumentException($"Tensor name '{name}' is longer than {MaxTensorNameBytes} UTF-8 bytes.", nameof(name));
        if (dimensions.Length is 0 or > MaxDimensions)
            throw new ArgumentException($"Tensor '{name}' has {dimensions.Length} dimensions; GGUF takes 1 to {MaxDimensions}.", nameof(dimensions));
        if (!type.TryGetBlockLayout(out var blockSize, out var typeSize))
            throw new ArgumentException($"Tensor '{name}' has the type {type}, whose layout is unknown.", nameof(type));
        if (dimensions[0] % (ulong)blockSize != 0)
            throw new ArgumentException($"Tensor '{name}' has rows of {dimensions[0]} elements, not a multiple of the block size {blockSize} of {type}.", nameof(dimensions));

        ulong elements = 1;
        foreach (var dimension in dimensions)
        {
            if (dimension == 0)
                throw new ArgumentException($"Tensor '{name}' has a zero dimension.", nameof(dimensions));
            elements = checked(elements * dimension);
        }
        var bytes = checked((long)(elements / (ulong)blockSize * (ulong)typeSize));
        if (!_tensorNames.Add(name))
            throw new ArgumentException($"Tensor '{name}' was already added.", nameof(name));
        _tensors.Add(new Tensor(name, dimensions.ToArray(), type, bytes));
    }

    /// <summary>Writes the header (metadata and tensor descriptions) and sets <see cref="Length"/>.</summary>
    public void WriteHeader()
    {
        ThrowIfHeaderWritten();
        using var header = new MemoryStream();
        using (var writer = new BinaryWriter(header, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(GgufMagic);
            writer.Write(Version);
            writer.Write((ulong)_tensors.Count);
            writer.Write((ulong)_metadata.Count);
            foreach (var (key, value) in _metadata)
                WriteMetadata(writer, key, value);

            ulong offset = 0;
            foreach (var tensor in _tensors)
            {
                WriteTensorInfo(writer, tensor.Name, tensor.Dimensions, tensor.Type, offset);
                offset += (ulong)AlignUp(tensor.ByteSize);
            }
            writer.Write(_zeros, 0, (int)(AlignUp(header.Length) - header.Length));

            Length = header.Length + (long)offset;
            foreach (var tensor in _tensors)
                _dataRemaining += tensor.ByteSize;
        }

        header.Position = 0;
        header.CopyTo(_output);
        BytesWritten = header.Length;
        _headerWritten = true;
        _current = 0;
        _currentWritten = 0;
    }

    /// <summary>Appends tensor data; it may span tensors, and the padding between tensors is inserted here.</summary>
    /// <param name="data">The next bytes of tensor data, in the tensors' element type.</param>
    /// <exception cref="InvalidOperationException">The header was not written yet, or the data is more than the declared tensors still hold (nothing is written then).</exception>
    public void WriteTensorData(ReadOnlySpan<byte> data)
    {
        if (!_headerWritten || _completed)
            throw new InvalidOperationException("Tensor data is written after WriteHeader and before Complete.");
        if (data.Length > _dataRemaining)
            throw new InvalidOperationException($"{data.Length} bytes of tensor data were given but the declared tensors hold only {_dataRemaining} more.");
        _dataRemaining -= data.Length;
        while (!data.IsEmpty)
        {
            var tensor = _tensors[_current];
            var count = (int)Math.Min(data.Length, tensor.ByteSize - _currentWritten);
            _output.Write(data[..count]);
            BytesWritten += count;
            _currentWritten += count;
            data = data[count..];
            if (_currentWritten == tensor.ByteSize)
            {
                WritePadding(AlignUp(tensor.ByteSize) - tensor.ByteSize);
                _current++;
                _currentWritten = 0;
            }
        }
    }

    /// <summary>Appends F32 tensor data (see <see cref="WriteTensorData(ReadOnlySpan{byte})"/>).</summary>
    /// <param name="values">The next values.</param>
    public void WriteTensorData(ReadOnlySpan<float> values) => WriteTensorData(MemoryMarshal.AsBytes(values));

    /// <summary>Checks that every declared tensor got all its data and flushes the stream.</summary>
    /// <exception cref="InvalidOperationException">The header was not written, or a tensor is short of data.</exception>
    public void Complete()
    {
        if (!_headerWritten)
            throw new InvalidOperationException("WriteHeader was not called.");
        if (_current < _tensors.Count)
        {
            var tensor = _tensors[_current];
            throw new InvalidOperationException($"Tensor '{tensor.Name}' got {_currentWritten} of its {tensor.ByteSize} bytes.");
        }
        _output.Flush();
        _completed = true;
    }

    private void WritePadding(long count)
    {
        _output.Write(_zeros, 0, (int)count);
        BytesWritten += count;
    }

    private long AlignUp(long value) => (value + _alignment - 1) / _alignment * _alignment;

    private void ThrowIfHeaderWritten()
    {
        if (_headerWritten)
            throw new InvalidOperationException("The header is already written.");
    }

    /// <summary>Writes one metadata entry (key, value type, value) as the header holds it; also used by tests that craft headers.</summary>
    /// <exception cref="ArgumentException"><paramref name="value"/> has no GGUF type.</exception>
    internal static void WriteMetadata(BinaryWriter writer, string key, object value)
    {
        var type = TypeOf(value) ?? throw new ArgumentException($"Metadata '{key}': {value.GetType().Name} has no GGUF type.", nameof(value));
        WriteString(writer, key);
        writer.Write((uint)type);
        WriteValue(writer, value);
    }

    /// <summary>Writes one tensor description as the header holds it; also used by tests that craft headers.</summary>
    internal static void WriteTensorInfo(BinaryWriter writer, string name, IReadOnlyList<ulong> dimensions, GgmlType type, ulong offset)
    {
        WriteString(writer, name);
        writer.Write((uint)dimensions.Count);
        foreach (var dimension in dimensions)
            writer.Write(dimension);
        writer.Write((uint)type);
        writer.Write(offset);
    }

    private static void WriteString(BinaryWriter writer, string value)
    {
        writer.Write((ulong)Encoding.UTF8.GetByteCount(value));
        writer.Write(Encoding.UTF8.GetBytes(value));
    }

    private static void WriteValue(BinaryWriter writer, object value)
    {
        switch (value)
        {
            case byte v: writer.Write(v); break;
            case sbyte v: writer.Write(v); break;
            case ushort v: writer.Write(v); break;
            case short v: writer.Write(v); break;
            case uint v: writer.Write(v); break;
            case int v: writer.Write(v); break;
            case ulong v: writer.Write(v); break;
            case long v: writer.Write(v); break;
            case float v: writer.Write(v); break;
            case double v: writer.Write(v); break;
            case bool v: writer.Write(v ? (byte)1 : (byte)0); break;
            case string v: WriteString(writer, v); break;
            case string[] strings:
                writer.Write((uint)GgufValueType.String);
                writer.Write((ulong)strings.Length);
                foreach (var s in strings)
                    WriteString(writer, s);
                break;
            case Array array: // numbers and booleans: their in-memory bytes are the little-endian GGUF layout
                writer.Write((uint)TypeOf(array.GetType().GetElementType()!)!.Value);
                writer.Write((ulong)array.Length);
                var bytes = new byte[Buffer.ByteLength(array)];
                Buffer.BlockCopy(array, 0, bytes, 0, bytes.Length);
                writer.Write(bytes);
                break;
        }
    }

    private static GgufValueType? TypeOf(object value) => value switch
    {
        string[] strings => Array.IndexOf(strings, null) < 0 ? GgufValueType.Array : null,
        Array array => array.GetType().IsSZArray && TypeOf(array.GetType().GetElementType()!) is not null ? GgufValueType.Array : null,
        _ => TypeOf(value.GetType()),
    };

    private static GgufValueType? TypeOf(Type type) => type.IsEnum ? null : Type.GetTypeCode(type) switch
    {
        TypeCode.Byte => GgufValueType.UInt8,
        TypeCode.SByte => GgufValueType.Int8,
        TypeCode.UInt16 => GgufValueType.UInt16,
        TypeCode.Int16 => GgufValueType.Int16,
        TypeCode.UInt32 => GgufValueType.UInt32,
        TypeCode.Int32 => GgufValueType.Int32,
        TypeCode.Single => GgufValueType.Float32,
        TypeCode.Boolean => GgufValueType.Bool,
        TypeCode.String => GgufValueType.String,
        TypeCode.UInt64 => GgufValueType.UInt64,
        TypeCode.Int64 => GgufValueType.Int64,
        TypeCode.Double => GgufValueType.Float64,
        _ => null,
    };

    private sealed record Tensor(string Name, ulong[] Dimensions, GgmlType Type, long ByteSize);
}
