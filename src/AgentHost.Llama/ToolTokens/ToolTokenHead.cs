using System.Text.Json;
using System.Text.Json.Serialization;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.ToolTokens;

/// <summary>A tool a head was trained for: its name and the SHA-256 of its argument schema.</summary>
/// <param name="Name">Tool name.</param>
/// <param name="SchemaHash">SHA-256 (hex) of the schema text (<see cref="ToolDefinition.SchemaHash"/>).</param>
public sealed record ToolTokenSlot(string Name, string SchemaHash)
{
    /// <summary>
    /// Argument demonstrations stored with the head (<see cref="ToolTokenDemonstrations"/>), used when the tool definition
    /// brings none; null when the head has none for this tool.
    /// </summary>
    public string? ArgumentPrompt { get; init; }
}

/// <summary>
/// A tool-token head (ToolkenGPT): a matrix W [tools x d] whose rows score the final normalised hidden
/// state h, <c>score_i = W_i . h + Bias</c>, appended to the vocabulary logits; with a context window of K
/// tokens W is [tools x 2d] and scores <c>[h ; mean of the last K hidden states]</c> (<see cref="ToolTokenContext"/>). It also keeps the prior W0
/// it was trained from (TokenLearning) and the identity of the model and tools it belongs to; loading it
/// onto another model or a changed tool set is refused.
/// </summary>
public sealed class ToolTokenHead
{
    /// <summary>Format tag written into head files.</summary>
    public const string FormatTag = "agenthost-toolkens/1";

    private readonly float[] _weights;

    /// <summary>Creates a head.</summary>
    /// <param name="modelName">Name of the model it belongs to (for messages).</param>
    /// <param name="modelHash">The model's <see cref="ModelFingerprint"/>.</param>
    /// <param name="dimension">Length of the head's input: the hidden size d, or 2d with a context window.</param>
    /// <param name="tools">The tools, in score order.</param>
    /// <param name="weights">W, row-major [tools x d].</param>
    /// <param name="prior">W0 the head was initialised from and regularised towards, or null (zero).</param>
    /// <param name="bias">Added to every tool score.</param>
    public ToolTokenHead(string modelName, string modelHash, int dimension, IReadOnlyList<ToolTokenSlot> tools, float[] weights, float[]? prior = null, float bias = 0)
    {
        ArgumentNullException.ThrowIfNull(tools);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        if (weights.Length != tools.Count * dimension)
            throw new ArgumentException($"W must have {tools.Count} x {dimension} values, not {weights.Length}.", nameof(weights));
        if (prior is not null && prior.Length != weights.Length)
            throw new ArgumentException("W0 must have the shape of W.", nameof(prior));
        ModelName = modelName;
        ModelHash = modelHash;
        Dimension = dimension;
        Tools = tools;
        _weights = weights;
        Prior = prior ?? new float[weights.Length];
        Bias = bias;
    }

    /// <summary>A head for <paramref name="model"/> read the way <paramref name="data"/> was built (its features and context window).</summary>
    public static ToolTokenHead Create(LlamaModel model, ToolTokenDataset data, IReadOnlyList<ToolTokenSlot> tools, float[] weights, float[]? prior = null, float bias = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        return new ToolTokenHead(model.Name, ModelFingerprint.Compute(model.Path), data.Dimension, tools, weights, prior, bias) { ContextWindow = data.ContextWindow };
    }

    /// <summary>Name of the model the head was trained on.</summary>
    public string ModelName { get; }

    /// <summary>Fingerprint of that model (<see cref="ModelFingerprint"/>).</summary>
    public string ModelHash { get; }

    /// <summary>Length of the head's input: the hidden size d, or 2d with a context window.</summary>
    public int Dimension { get; }

    /// <summary>Tokens averaged into the context part of the input; 0 (the papers' head) scores h alone.</summary>
    public int ContextWindow
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            if (value > 0 && Dimension % 2 != 0)
                throw new ArgumentException($"A head with a context window reads [h ; mean], an even length, not {Dimension}.", nameof(value));
            field = value;
        }
    }

    /// <summary>Hidden size d of the model the head reads.</summary>
    public int HiddenSize => ToolTokenContext.HiddenSizeOf(Dimension, ContextWindow);

    /// <summary>The tools, in score order.</summary>
    public IReadOnlyList<ToolTokenSlot> Tools { get; }

    /// <summary>W, row-major [tools x d].</summary>
    public ReadOnlySpan<float> Weights => _weights;

    /// <summary>The prior W0 (zero when trained without one).</summary>
    public float[] Prior { get; }

    /// <summary>Added to every tool score; large values make tools fire more often, -infinity never.</summary>
    public float Bias { get; }

    /// <summary>Training facts recorded in the head file (loss, epochs ...), or empty.</summary>
    public IReadOnlyDictionary<string, double> TrainingInfo { get; init; } = new Dictionary<string, double>();

    /// <summary>The same head with another bias.</summary>
    public ToolTokenHead WithBias(float bias) => new(ModelName, ModelHash, Dimension, Tools, _weights, Prior, bias) { ContextWindow = ContextWindow, TrainingInfo = TrainingInfo };

    /// <summary>The same head with one more training fact recorded.</summary>
    public ToolTokenHead WithTrainingInfo(string key, double value)
        => new(ModelName, ModelHash, Dimension, Tools, _weights, Prior, Bias) { ContextWindow = ContextWindow, TrainingInfo = new Dictionary<string, double>(TrainingInfo) { [key] = value } };

    /// <summary>The same head with the argument demonstrations of <paramref name="prompts"/> (by tool name) stored for its tools; other tools keep theirs.</summary>
    public ToolTokenHead WithArgumentPrompts(IReadOnlyDictionary<string, string> prompts)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        var unknown = prompts.Keys.Where(k => !Tools.Any(t => t.Name == k)).ToList();
        if (unknown.Count > 0)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Demonstrations for [{string.Join(", ", unknown)}], which the head has no tool for (its tools: {string.Join(", ", Tools.Select(t => t.Name))}).");
        return new(ModelName, ModelHash, Dimension, [.. Tools.Select(t => t with { ArgumentPrompt = prompts.GetValueOrDefault(t.Name) ?? t.ArgumentPrompt })], _weights, Prior, Bias)
        {
            ContextWindow = ContextWindow,
            TrainingInfo = TrainingInfo,
        };
    }

    /// <summary>The head made of the prior alone (W = W0), for comparisons.</summary>
    public ToolTokenHead PriorOnly() => new(ModelName, ModelHash, Dimension, Tools, (float[])Prior.Clone(), Prior, Bias) { ContextWindow = ContextWindow };

    /// <summary>The builder of this head's input from a text's hidden states.</summary>
    public ToolTokenContext CreateContext() => new(HiddenSize, ContextWindow);

    /// <summary>Writes <c>W . x + Bias</c> for the input <paramref name="features"/> (<see cref="ToolTokenContext"/>) into <paramref name="scores"/> (one per tool). Allocation-free.</summary>
    public void Score(ReadOnlySpan<float> features, Span<float> scores)
    {
        var d = Dimension;
        for (var i = 0; i < Tools.Count; i++)
            scores[i] = Dot(_weights.AsSpan(i * d, d), features) + Bias;
    }

    internal static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var sum = 0f;
        for (var i = 0; i < a.Length; i++)
            sum += a[i] * b[i];
        return sum;
    }

    /// <summary>Refuses (clear <see cref="AgentHostException"/>) a model other than the one the head was trained on.</summary>
    public void EnsureMatches(LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var hash = model.GetState(m => new ModelHashState(ModelFingerprint.Compute(m.Path))).Value;
        if (hash != ModelHash)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"This tool-token head was trained on model '{ModelName}' (fingerprint {Short(ModelHash)}) and cannot be used with model '{model.Name}' (fingerprint {Short(hash)}); train a head for that model.");
        }
        if (HiddenSize != model.EmbeddingSize)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"This tool-token head reads hidden states of {HiddenSize} values, but model '{model.Name}' has {model.EmbeddingSize}.");
    }

    /// <summary>Refuses (clear <see cref="AgentHostException"/>) a tool set that differs from the head's: names, order or schemas.</summary>
    public void EnsureMatches(IReadOnlyList<ToolDefinition> tools)
    {
        ArgumentNullException.ThrowIfNull(tools);
        var expected = string.Join(", ", Tools.Select(t => t.Name));
        if (tools.Count != Tools.Count)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"This tool-token head was trained for the tools [{expected}] but {tools.Count} tool(s) were given: [{string.Join(", ", tools.Select(t => t.Name))}].");
        for (var i = 0; i < tools.Count; i++)
        {
            if (tools[i].Name != Tools[i].Name)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"This tool-token head was trained for the tools [{expected}] (in that order) but tool {i + 1} given is '{tools[i].Name}'.");
            if (tools[i].SchemaHash != Tools[i].SchemaHash)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"The arguments schema of tool '{tools[i].Name}' changed since this tool-token head was trained; train the head again.");
        }
    }

    /// <summary>Saves the head as JSON.</summary>
    public void Save(string path)
    {
        var file = new HeadFile
        {
            Format = FormatTag,
            ModelName = ModelName,
            ModelHash = ModelHash,
            Dimension = Dimension,
            ContextWindow = ContextWindow,
            Bias = Bias,
            Tools = [.. Tools.Select(t => new HeadTool { Name = t.Name, SchemaHash = t.SchemaHash, ArgumentPrompt = t.ArgumentPrompt })],
            Weights = _weights,
            Prior = Prior,
            Training = new Dictionary<string, double>(TrainingInfo),
        };
        try
        {
            var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
            if (!string.IsNullOrEmpty(directory))
                Directory.CreateDirectory(directory);
            File.WriteAllText(path, JsonSerializer.Serialize(file, _json));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot write head file '{path}': {e.Message}", e);
        }
    }

    /// <summary>Loads a head saved by <see cref="Save"/>; anything else is a clear <see cref="AgentHostException"/>.</summary>
    public static ToolTokenHead Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Tool-token head file '{path}' does not exist.");
        HeadFile? file;
        try
        {
            file = JsonSerializer.Deserialize<HeadFile>(BoundedFile.ReadAllText(path, "tool-token head", BoundedFile.MaxHeadBytes), _json);
        }
        catch (JsonException e)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"'{path}' is not a tool-token head file: {e.Message}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot read head file '{path}': {e.Message}", e);
        }
        if (file is null || file.Format != FormatTag)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"'{path}' is not a tool-token head file (format '{FormatTag}' expected).");
        if (file.ModelHash is null || file.Tools is null || file.Weights is null || file.Dimension < 1
            || file.Weights.Length != file.Tools.Length * file.Dimension || (file.Prior is not null && file.Prior.Length != file.Weights.Length)
            || file.Tools.Any(t => string.IsNullOrEmpty(t.Name) || t.SchemaHash is null) || !float.IsFinite(file.Bias) && !float.IsNegativeInfinity(file.Bias)
            || file.ContextWindow < 0 || file.ContextWindow > 0 && file.Dimension % 2 != 0)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Tool-token head file '{path}' is damaged: its model hash, tools or weights are missing or inconsistent.");
        }
        return new ToolTokenHead(file.ModelName ?? "", file.ModelHash, file.Dimension, [.. file.Tools.Select(t => new ToolTokenSlot(t.Name!, t.SchemaHash!) { ArgumentPrompt = t.ArgumentPrompt })],
            file.Weights, file.Prior, file.Bias) { ContextWindow = file.ContextWindow, TrainingInfo = file.Training ?? [] };
    }

    private static string Short(string hash) => hash.Length > 12 ? hash[..12] : hash;

    private static readonly JsonSerializerOptions _json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private sealed record ModelHashState(string Value);

    private sealed class HeadFile
    {
        public string? Format { get; set; }
        public string? ModelName { get; set; }
        public string? ModelHash { get; set; }
        public int Dimension { get; set; }
        public int ContextWindow { get; set; }
        public float Bias { get; set; }
        public HeadTool[]? Tools { get; set; }
        public float[]? Weights { get; set; }
        public float[]? Prior { get; set; }
        public Dictionary<string, double>? Training { get; set; }
    }

    private sealed class HeadTool
    {
        public string? Name { get; set; }
        public string? SchemaHash { get; set; }
        [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        public string? ArgumentPrompt { get; set; }
    }
}
