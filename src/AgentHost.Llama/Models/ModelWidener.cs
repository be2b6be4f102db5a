using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace AgentHost.Llama.Models;

/// <summary>
/// Builds an exact compute stand-in of a small llama-architecture model with F32 tensors: the same greedy
/// predictions, at the cost of a larger shape. The residual stream is widened from D to D' with dimensions that
/// stay zero, the feed-forward from F to F' with units that write nothing, and blocks are appended that compute
/// but add nothing to the residual stream. All new weights are finite copies of source weights, so every matrix
/// product does real work.
/// </summary>
/// <remarks>
/// <para>GGML stores a matrix with <c>ne[0]</c> as the contiguous input dimension: a weight of shape
/// [in, out] is <c>out</c> rows of <c>in</c> values. So a projection that reads the residual stream (Q, K, V, FFN
/// gate and up, output) gets longer rows (new input columns, copied cyclically from the same row: they multiply
/// zeros), and one that writes it (attention output, FFN down) gets new rows of zeros. The token embedding's
/// rows get zero tails.</para>
/// <para>RMSNorm stays exact: llama.cpp computes <c>x / sqrt(mean(x²) + eps) * w</c>, and the mean over D' dimensions
/// of a vector with D nonzero ones is D/D' times the mean over D; so every norm weight is scaled by sqrt(D/D')
/// and eps becomes eps·D/D'. Heads keep their size because <c>llama.attention.key_length</c>,
/// <c>value_length</c> and <c>rope.dimension_count</c> are written (llama.cpp otherwise derives the head size
/// as n_embd / n_head); Q, K and V keep their output widths, so attention, RoPE and the KV cache are the
/// source's. Results match the source up to float rounding (norm scaling, and the summation order of longer dot products).</para>
/// </remarks>
public sealed partial class ModelWidener
{
    /// <summary>Metadata key recording the SHA-256 of the source file a stand-in was built from.</summary>
    public const string SourceSha256Key = "agenthost.stand_in.source_sha256";

    private const string Arch = "llama";
    private const string EmbeddingKey = Arch + ".embedding_length";
    private const string FeedForwardKey = Arch + ".feed_forward_length";
    private const string BlockCountKey = Arch + ".block_count";
    private const string HeadCountKey = Arch + ".attention.head_count";
    private const string HeadCountKvKey = Arch + ".attention.head_count_kv";
    private const string KeyLengthKey = Arch + ".attention.key_length";
    private const string ValueLengthKey = Arch + ".attention.value_length";
    private const string RopeDimensionKey = Arch + ".rope.dimension_count";
    private const string EpsilonKey = Arch + ".attention.layer_norm_rms_epsilon";
    private static readonly TimeSpan _progressInterval = TimeSpan.FromMilliseconds(100);

    private readonly GgufFile _source;
    private readonly int _d;  // source residual width
    private readonly int _f;  // source feed-forward width
    private readonly int _blocks;
    private readonly int _keyLength;
    private readonly int _valueLength;
    private readonly int _ropeDimensions;
    private readonly float _epsilon;
    private readonly List<Target> _targets = [];

    /// <summary>Checks the source and the target shape and plans the stand-in (nothing is written yet).</summary>
    /// <param name="source">A llama-architecture GGUF whose tensors are all F32.</param>
    /// <param name="embeddingLength">Target residual width D' (at least the source's).</param>
    /// <param name="feedForwardLength">Target feed-forward width F' (at least the source's).</param>
    /// <param name="blockCount">Target number of blocks (at least the source's).</param>
    /// <exception cref="AgentHostException">
    /// <see cref="ErrorKind.InvalidModelFile"/> when the source is not such a model (architecture, tensor types,
    /// unknown or missing tensors, inconsistent shapes); <see cref="ErrorKind.InvalidArgument"/> when the target
    /// shape is smaller than the source's.
    /// </exception>
    public ModelWidener(GgufFile source, int embeddingLength, int feedForwardLength, int blockCount)
    {
        ArgumentNullException.ThrowIfNull(source);
        _source = source;
        if (source.Architecture != Arch)
            throw Unsupported($"its architecture is '{source.Architecture ?? "(none)"}', not '{Arch}'");

        _d = RequiredLength(EmbeddingKey);
        _f = RequiredLength(FeedForwardKey);
        _blocks = RequiredLength(BlockCountKey);
        var heads = RequiredLength(HeadCountKey);
        var kvHeads = OptionalLength(HeadCountKvKey) ?? heads;
        if (_d % heads != 0 && (OptionalLength(KeyLengthKey) is null || OptionalLength(ValueLengthKey) is null))
            throw Unsupported($"its {EmbeddingKey} {_d} is not a multiple of its {heads} heads");
        _keyLength = OptionalLength(KeyLengthKey) ?? _d / heads;
        _valueLength = OptionalLength(ValueLengthKey) ?? _d / heads;
        _ropeDimensions = OptionalLength(RopeDimensionKey) ?? _keyLength;
        _epsilon = source.Metadata.TryGetValue(EpsilonKey, out var eps) && eps is float e && float.IsFinite(e) && e > 0
            ? e
            : throw Unsupported($"it has no positive float32 '{EpsilonKey}'");

        CheckTarget(embeddingLength, _d, nameof(StandInSettings.EmbeddingLength));
        CheckTarget(feedForwardLength, _f, nameof(StandInSettings.FeedForwardLength));
        CheckTarget(blockCount, _blocks, nameof(StandInSettings.BlockCount));
        EmbeddingLength = embeddingLength;
        FeedForwardLength = feedForwardLength;
        BlockCount = blockCount;

        Plan(heads, kvHeads);
        SourceSha256 = HashSource();
    }

    /// <summary>Target residual width D'.</summary>
    public int EmbeddingLength { get; }

    /// <summary>Target feed-forward width F'.</summary>
    public int FeedForwardLength { get; }

    /// <summary>Target number of blocks.</summary>
    public int BlockCount { get; }

    /// <summary>Number of weights of the stand-in.</summary>
    public long ParameterCount { get; private set; }

    /// <summary>SHA-256 (lower-case hex) of the source file, recorded in the stand-in as <see cref="SourceSha256Key"/>.</summary>
    public string SourceSha256 { get; }

    /// <summary>
    /// Whether <paramref name="standIn"/> says it was built by this plan: the same source digest and shape.
    /// </summary>
    /// <param name="standIn">The header of an existing stand-in file.</param>
    /// <param name="mismatch">What differs, when it does not match.</param>
    public bool Matches(GgufFile standIn, out string? mismatch)
    {
        ArgumentNullException.ThrowIfNull(standIn);
        mismatch =
            standIn.GetString(SourceSha256Key) != SourceSha256 ? "it was built from a different source file"
            : standIn.GetInteger(EmbeddingKey) != EmbeddingLength ? $"its {EmbeddingKey} is {standIn.GetInteger(EmbeddingKey)}, not {EmbeddingLength}"
            : standIn.GetInteger(FeedForwardKey) != FeedForwardLength ? $"its {FeedForwardKey} is {standIn.GetInteger(FeedForwardKey)}, not {FeedForwardLength}"
            : standIn.GetInteger(BlockCountKey) != BlockCount ? $"its {BlockCountKey} is {standIn.GetInteger(BlockCountKey)}, not {BlockCount}"
            : null;
        return mismatch is null;
    }

    /// <summary>
    /// Writes the stand-in, tensor by tensor: memory holds one source tensor and one target row at a time.
    /// The bytes depend only on the source file and the shape.
    /// </summary>
    /// <param name="output">Where the GGUF file is written (from its current position).</param>
    /// <param name="progress">Receives bytes written and the file's total size, about ten times a second and once at the end.</param>
    /// <param name="cancellationToken">Stops the writing between rows.</param>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public void Write(Stream output, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(output);
        var writer = new GgufWriter(output);
        WriteMetadata(writer);
        foreach (var target in _targets)
            writer.AddTensor(target.Name, GgmlType.F32, target.Dimensions);
        writer.WriteHeader();

        var clock = Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        progress?.Report(new DownloadProgress(writer.BytesWritten, writer.Length) { IsBuild = true });
        float[]? row = null;
        foreach (var target in _targets)
        {
            var sourceRows = GgufFile.RowCount(target.Source);
            var data = _source.ReadRows(target.Source, 0, checked((int)sourceRows));
            var rowLength = (int)target.Dimensions[0];
            if (row is null || row.Length < rowLength)
                row = new float[rowLength];
            var rowCount = target.Dimensions.Length > 1 ? (long)target.Dimensions[1] : 1;
            for (long r = 0; r < rowCount; r++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var span = row.AsSpan(0, rowLength);
                FillRow(target, data, r, span);
                writer.WriteTensorData((ReadOnlySpan<float>)span);
                if (progress is not null && clock.Elapsed - lastReport >= _progressInterval)
                {
                    lastReport = clock.Elapsed;
                    progress.Report(new DownloadProgress(writer.BytesWritten, writer.Length) { IsBuild = true });
                }
            }
        }
        writer.Complete();
        progress?.Report(new DownloadProgress(writer.BytesWritten, writer.Length) { IsBuild = true });
    }

    /// <summary>Writes row <paramref name="r"/> of <paramref name="target"/> from its source tensor's data.</summary>
    private void FillRow(Target target, float[] source, long r, Span<float> row)
    {
        var sourceRowLength = (int)target.Source.Dimensions[0];
        switch (target.Role)
        {
            case Role.Embedding: // zero columns: the new residual dimensions start at zero
                source.AsSpan((int)(r * sourceRowLength), sourceRowLength).CopyTo(row);
                row[sourceRowLength..].Clear();
                break;
            case Role.Norm: // one row; exact under the wider mean (see the class remarks)
                RepeatInto(source, row);
                var scale = Math.Sqrt((double)_d / EmbeddingLength);
                for (var i = 0; i < row.Length; i++)
                    row[i] = (float)(row[i] * scale);
                break;
            case Role.ReadsResidual: // new input columns multiply zeros
                RepeatInto(source.AsSpan((int)(r * sourceRowLength), sourceRowLength), row);
                break;
            case Role.FeedForwardIn: // new units repeat source units; FFN down ignores them
                var unit = (int)(r % _f);
                RepeatInto(source.AsSpan(unit * sourceRowLength, sourceRowLength), row);
                break;
            case Role.WritesResidual: // attention output and FFN down: zero for new dimensions, new units and appended blocks
                row.Clear();
                if (!target.Silent && (ulong)r < target.Source.Dimensions[1])
                    source.AsSpan((int)(r * sourceRowLength), sourceRowLength).CopyTo(row);
                break;
        }
    }

    /// <summary>Fills <paramref name="row"/> with <paramref name="source"/> repeated: finite values, real work.</summary>
    private static void RepeatInto(ReadOnlySpan<float> source, Span<float> row)
    {
        for (var i = 0; i < row.Length; i += source.Length)
            source[..Math.Min(source.Length, row.Length - i)].CopyTo(row[i..]);
    }

    private void WriteMetadata(GgufWriter writer)
    {
        // The source's entries in order, the shape's replaced; head size and RoPE pinned to the source's.
        var replaced = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            [EmbeddingKey] = (uint)EmbeddingLength,
            [FeedForwardKey] = (uint)FeedForwardLength,
            [BlockCountKey] = (uint)BlockCount,
            [KeyLengthKey] = (uint)_keyLength,
            [ValueLengthKey] = (uint)_valueLength,
            [RopeDimensionKey] = (uint)_ropeDimensions,
            [EpsilonKey] = (float)((double)_epsilon * _d / EmbeddingLength),
            ["general.name"] = string.Create(CultureInfo.InvariantCulture,
                $"{_source.GetString("general.name") ?? Path.GetFileNameWithoutExtension(_source.Path)} stand-in {EmbeddingLength}x{FeedForwardLength}x{BlockCount}"),
            [SourceSha256Key] = SourceSha256,
        };
        foreach (var (key, value) in _source.Metadata)
            writer.AddMetadata(key, replaced.Remove(key, out var replacement) ? replacement : value);
        foreach (var (key, value) in replaced)
            writer.AddMetadata(key, value);
    }

    private void Plan(int heads, int kvHeads)
    {
        var vocabulary = _source.FindTensor("token_embd.weight")?.Dimensions is [_, var v] ? v : 0;
        if (vocabulary == 0)
            throw Unsupported("it has no 2-dimensional 'token_embd.weight'");
        var d = (ulong)_d;
        var f = (ulong)_f;
        var wide = (ulong)EmbeddingLength;
        var wideF = (ulong)FeedForwardLength;

        // Expected source shape and target shape of every tensor a llama block or the model may hold.
        var blockParts = new Dictionary<string, (Role Role, ulong[] Source, ulong[] Target)>(StringComparer.Ordinal)
        {
            ["attn_norm"] = (Role.Norm, [d], [wide]),
            ["attn_q"] = (Role.ReadsResidual, [d, (ulong)(heads * _keyLength)], [wide, (ulong)(heads * _keyLength)]),
            ["attn_k"] = (Role.ReadsResidual, [d, (ulong)(kvHeads * _keyLength)], [wide, (ulong)(kvHeads * _keyLength)]),
            ["attn_v"] = (Role.ReadsResidual, [d, (ulong)(kvHeads * _valueLength)], [wide, (ulong)(kvHeads * _valueLength)]),
            ["attn_output"] = (Role.WritesResidual, [(ulong)(heads * _valueLength), d], [(ulong)(heads * _valueLength), wide]),
            ["ffn_norm"] = (Role.Norm, [d], [wide]),
            ["ffn_gate"] = (Role.FeedForwardIn, [d, f], [wide, wideF]),
            ["ffn_up"] = (Role.FeedForwardIn, [d, f], [wide, wideF]),
            ["ffn_down"] = (Role.WritesResidual, [f, d], [wideF, wide]),
        };
        var modelParts = new Dictionary<string, (Role Role, ulong[] Source, ulong[] Target)>(StringComparer.Ordinal)
        {
            ["token_embd.weight"] = (Role.Embedding, [d, vocabulary], [wide, vocabulary]),
            ["output_norm.weight"] = (Role.Norm, [d], [wide]),
            ["output.weight"] = (Role.ReadsResidual, [d, vocabulary], [wide, vocabulary]), // absent when tied to the embedding
        };

        var blocks = new List<GgufTensorInfo>[_blocks];
        for (var b = 0; b < blocks.Length; b++)
            blocks[b] = [];
        foreach (var tensor in _source.Tensors)
        {
            if (tensor.Type != GgmlType.F32)
                throw Unsupported($"its tensor '{tensor.Name}' is {tensor.Type}; a stand-in is built from F32 tensors only");
            var block = BlockTensorName().Match(tensor.Name);
            var known = block.Success
                ? blockParts.TryGetValue(block.Groups[2].Value, out var part) && int.Parse(block.Groups[1].ValueSpan, CultureInfo.InvariantCulture) < _blocks
                : modelParts.TryGetValue(tensor.Name, out part);
            if (!known)
                throw Unsupported($"it holds the tensor '{tensor.Name}', which a stand-in does not know how to widen");
            if (!tensor.Dimensions.AsSpan().SequenceEqual(part.Source))
                throw Unsupported($"its tensor '{tensor.Name}' has the shape [{string.Join(", ", tensor.Dimensions)}], not [{string.Join(", ", part.Source)}]");
            if (block.Success)
                blocks[int.Parse(block.Groups[1].ValueSpan, CultureInfo.InvariantCulture)].Add(tensor);
            else
                Add(tensor.Name, tensor, part.Role, part.Target, silent: false);
        }
        foreach (var required in (string[])["token_embd.weight", "output_norm.weight"])
        {
            if (_source.FindTensor(required) is null)
                throw Unsupported($"it has no '{required}'");
        }

        // The source's blocks, then appended copies of them (block b copies block b mod L) that add nothing.
        for (var b = 0; b < BlockCount; b++)
        {
            var template = blocks[b % _blocks];
            if (template.Count != blockParts.Count)
                throw Unsupported($"its block {b % _blocks} has {template.Count} of the {blockParts.Count} tensors of a llama block");
            foreach (var tensor in template)
            {
                var partName = BlockTensorName().Match(tensor.Name).Groups[2].Value;
                var part = blockParts[partName];
                Add(string.Create(CultureInfo.InvariantCulture, $"blk.{b}.{partName}.weight"), tensor, part.Role, part.Target, silent: b >= _blocks);
            }
        }
    }

    private void Add(string name, GgufTensorInfo source, Role role, ulong[] dimensions, bool silent)
    {
        _targets.Add(new Target(name, source, role, dimensions, silent));
        ParameterCount += dimensions.Length > 1 ? checked((long)(dimensions[0] * dimensions[1])) : (long)dimensions[0];
    }

    private string HashSource()
    {
        try
        {
            return ModelDigest.Compute(_source.Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.InvalidModelFile, $"Model file '{_source.Path}' cannot be read: {e.Message.TrimEnd('.')}.", e);
        }
    }

    private int RequiredLength(string key) =>
        OptionalLength(key) ?? throw Unsupported($"it has no positive '{key}'");

    private int? OptionalLength(string key) =>
        _source.GetInteger(key) is { } value
            ? value is > 0 and <= int.MaxValue ? (int)value : throw Unsupported($"its '{key}' is {value}")
            : null;

    private static void CheckTarget(int value, int sourceValue, string setting)
    {
        if (value < sourceValue)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"The stand-in's {setting} is {value}, smaller than the source model's {sourceValue}; a stand-in only widens.");
        }
    }

    private AgentHostException Unsupported(string problem) =>
        new(ErrorKind.InvalidModelFile, $"Model file '{_source.Path}' cannot be the source of a stand-in: {problem}.");

    [GeneratedRegex(@"^blk\.(\d{1,9})\.([a-z_]+)\.weight$", RegexOptions.CultureInvariant)]
    private static partial Regex BlockTensorName();

    private enum Role
    {
        Embedding,
        Norm,
        ReadsResidual,
        FeedForwardIn,
        WritesResidual,
    }

    /// <summary>One tensor of the stand-in, made from <c>Source</c>; <c>Silent</c> marks an appended block, whose residual writes are all zero.</summary>
    private sealed record Target(string Name, GgufTensorInfo Source, Role Role, ulong[] Dimensions, bool Silent);
}
