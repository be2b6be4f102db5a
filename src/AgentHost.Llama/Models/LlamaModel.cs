using System.Text;
using AgentHost.Llama.Engine;
using LLama;
using LLama.Common;
using LLama.Exceptions;
using LLama.Native;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace AgentHost.Llama.Models;

/// <summary>
/// A loaded GGUF model: its weights, vocabulary tables, input guard and the scheduler thread on which
/// all of its contexts run. Create sessions (contexts) from it with <see cref="CreateSessionAsync(CancellationToken)"/>.
/// </summary>
public sealed class LlamaModel : IDisposable
{
    /// <summary>Largest number of parallel sequences a context may have (larger values crash this llama.cpp build).</summary>
    public const int MaxSequences = ModelSettings.MaxSequences;

    private readonly ILogger _logger;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Type, object> _state = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, LoraAdapter> _loras = new(StringComparer.Ordinal);
    // LLamaSharp keeps the adapter's native pointer internal; read it to detect a refused adapter (null when absent).

    private LlamaModel(string name, string path, ModelSettings settings, GgufFile file, LLamaWeights weights,
        ModelParams parameters, ILoggerFactory loggerFactory, ILogger logger)
    {
        LoggerFactory = loggerFactory;
        Name = name;
        Path = path;
        Settings = settings;
        File = file;
        Weights = weights;
        Parameters = parameters;
        _logger = logger;
        var guard = InputGuard.ForVocabulary(file.GetString("tokenizer.ggml.model"), file.GetStringArray("tokenizer.ggml.tokens"), settings.UnsupportedCharacters);
        if (guard.IsActive)
        {
            // Debug: a fact of the model, not something to fix; a host app logs one line per load (the provider's).
            logger.LogDebug("Model {Name} lacks byte-fallback tokens: characters it cannot encode are handled by policy {Policy} before tokenizing.",
                name, settings.UnsupportedCharacters);
        }
        Vocabulary = new TokenVocabulary(weights.NativeHandle, guard);
        Scheduler = new ModelScheduler(name);
    }

    /// <summary>Catalog name (or file name for an explicit path).</summary>
    public string Name { get; }

    /// <summary>Full path of the GGUF file.</summary>
    public string Path { get; }

    /// <summary>The settings the model was loaded with (threads resolved).</summary>
    public ModelSettings Settings { get; }

    /// <summary>The GGUF header read before loading (metadata, tensors).</summary>
    public GgufFile File { get; }

    /// <summary>Token tables for decoding.</summary>
    public TokenVocabulary Vocabulary { get; }

    /// <summary>The thread every context of this model runs on.</summary>
    public ModelScheduler Scheduler { get; }

    /// <summary>
    /// The LLamaSharp weights (for code that wants LLamaSharp's own executors). Text given to them bypasses
    /// <see cref="Tokenize"/>: pass it through <see cref="MakeTokenizable"/> first.
    /// </summary>
    public LLamaWeights Weights { get; }

    /// <summary>The LLamaSharp parameters every context of this model is created with.</summary>
    public ModelParams Parameters { get; }

    /// <summary>The logger factory the model was loaded with (strategies log per-model facts through it).</summary>
    internal ILoggerFactory LoggerFactory { get; }

    /// <summary>Context size of new sessions, in tokens.</summary>
    public int ContextSize => (int)Parameters.ContextSize!.Value;

    /// <summary>Hidden size d: the length of a final hidden state.</summary>
    public int EmbeddingSize => Weights.EmbeddingSize;

    /// <summary>
    /// Validates the file (exists, readable, GGUF, not truncated), then loads it. Every user-caused
    /// failure is an <see cref="AgentHostException"/> with one clear message.
    /// </summary>
    public static LlamaModel Load(string name, string path, ModelSettings settings, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        loggerFactory ??= NullLoggerFactory.Instance;
        var logger = loggerFactory.CreateLogger<LlamaModel>();
        settings = settings.Clone();
        var (file, shape) = Inspect(name, path, settings);
        settings.ContextSize = CheckContextSize(name, settings, shape);
        NativeRuntime.Configure(loggerFactory);

        var cores = Environment.ProcessorCount;
        settings.Threads = ClampThreads(settings.Threads, cores, "Threads", logger);
        settings.BatchThreads = settings.BatchThreads == 0 ? settings.Threads : ClampThreads(settings.BatchThreads, cores, "BatchThreads", logger);

        ModelParams parameters;
        LLamaWeights weights;
        try
        {
            // ModelParams' constructor is the first native call (it asks llama.cpp for the device count): a missing backend fails here.
            parameters = new ModelParams(path)
            {
                GpuLayerCount = settings.GpuLayers,
                Threads = settings.Threads,
                BatchThreads = settings.BatchThreads,
                BatchSize = (uint)settings.BatchSize,
                UBatchSize = (uint)settings.BatchSize,
                SeqMax = (uint)settings.Sequences,
                KVUnified = true, // shared prefixes across sequences need one unified cache
                Embeddings = settings.HiddenStates,
                PoolingType = settings.HiddenStates ? LLamaPoolingType.None : LLamaPoolingType.Unspecified,
                FlashAttention = settings.FlashAttention switch
                {
                    FlashAttentionMode.On => true,
                    FlashAttentionMode.Off => false,
                    _ => null,
                },
            };
            weights = LLamaWeights.LoadFromFile(parameters);
        }
        catch (LoadWeightsFailedException ex)
        {
            throw new AgentHostException(ErrorKind.InvalidModelFile, $"llama.cpp could not load model file '{path}' (unsupported architecture or corrupt data; the native log has details).", ex);
        }
        catch (Exception ex) when (NativeRuntime.BackendMissing(ex) is { } missing)
        {
            throw missing;
        }

        var contextSize = settings.ContextSize;
        if (contextSize > shape.TrainedContext)
            logger.LogWarning("Model {Name}: context size {Requested} exceeds the {Trained} tokens it was trained with.", name, contextSize, shape.TrainedContext);
        parameters.ContextSize = (uint)contextSize;

        logger.LogDebug("Loaded {Name} from {Path}: {Vocab} tokens, context {Context}, threads {Threads}/{BatchThreads}.",
            name, path, weights.Vocab.Count, contextSize, settings.Threads, settings.BatchThreads);
        try
        {
            return new LlamaModel(name, System.IO.Path.GetFullPath(path), settings, file, weights, parameters, loggerFactory, logger);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Makes every check <see cref="Load"/> makes before llama.cpp sees the file (settings, GGUF header, hyperparameters
    /// and tensor shapes, context size against the trained context and memory) without loading it: a server checks its
    /// catalog at start this way.
    /// </summary>
    /// <exception cref="AgentHostException">The first problem found, naming the configuration key or model file key.</exception>
    public static ModelShape Check(string name, string path, ModelSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var (_, shape) = Inspect(name, path, settings);
        CheckContextSize(name, settings, shape);
        return shape;
    }

    private static (GgufFile File, ModelShape Shape) Inspect(string name, string path, ModelSettings settings)
    {
        settings.Validate(name);
        var file = GgufFile.Read(path);
        return (file, ModelShape.Read(file));
    }

    /// <summary>
    /// Tokenizes user text. Text the vocabulary cannot encode is replaced or rejected first (see
    /// <see cref="InputGuard"/>), so this never hands llama.cpp a character that would abort the process.
    /// </summary>
    /// <param name="text">The text.</param>
    /// <param name="addBos">Whether to start with the BOS token.</param>
    /// <param name="parseSpecial">
    /// Whether the text of control tokens (e.g. <c>&lt;|im_end|&gt;</c>) becomes those tokens. Leave it false
    /// for anything a user wrote, or the user can end turns and forge roles.
    /// </param>
    public int[] Tokenize(string text, bool addBos, bool parseSpecial = false)
    {
        var tokens = Weights.NativeHandle.Tokenize(MakeTokenizable(text), addBos, parseSpecial, Encoding.UTF8);
        var ids = new int[tokens.Length];
        for (var i = 0; i < tokens.Length; i++)
            ids[i] = (int)tokens[i];
        return ids;
    }

    /// <summary>
    /// The tokens <paramref name="text"/> takes right after a word in running text: tokenizes "a" + text and drops the
    /// anchor's tokens, so a SentencePiece space prefix stays with the anchor (".\n" after a word is "." then the
    /// newline, not the bare space piece first). A token spanning the boundary counts as the text's.
    /// </summary>
    public int[] TokenizeAfterWord(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var anchor = Tokenize("a", addBos: false);
        var withAnchor = Tokenize("a" + text, addBos: false);
        return withAnchor[anchor.AsSpan().CommonPrefixLength(withAnchor)..];
    }

    /// <summary>
    /// Returns <paramref name="text"/> with every character the vocabulary cannot encode replaced or rejected (see
    /// <see cref="InputGuard"/>). <see cref="Tokenize"/> calls it; code that hands text to llama.cpp's tokenizer another
    /// way (LLamaSharp's executors on <see cref="Weights"/>) must call it first.
    /// </summary>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.UnsupportedInput"/> under <see cref="UnsupportedCharacterPolicy.Reject"/>.</exception>
    public string MakeTokenizable(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var safe = Vocabulary.Guard.Sanitize(text, out var replaced);
        if (replaced > 0)
            _logger.LogWarning("Replaced {Count} character(s) that model {Name} cannot encode.", replaced, Name);
        return safe;
    }

    /// <summary>Renders tokens as text (UTF-8, control tokens omitted).</summary>
    public string Detokenize(ReadOnlySpan<int> tokens)
    {
        var bytes = new List<byte>();
        foreach (var token in tokens)
            bytes.AddRange(Vocabulary.GetBytes(token));
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>
    /// State a strategy keeps per loaded model across requests (e.g. token recycling's adjacency
    /// matrix): one instance per type, created on first use.
    /// </summary>
    public T GetState<T>(Func<LlamaModel, T> create) where T : class
    {
        ArgumentNullException.ThrowIfNull(create);
        return (T)_state.GetOrAdd(typeof(T), _ => create(this));
    }

    /// <summary>
    /// Loads a LoRA adapter GGUF for this model (once per path; it lives as long as the model). Apply it to a
    /// session with <see cref="InferenceSession.SetLoraAdapters"/>. A file that is not a LoRA adapter for this
    /// model is an <see cref="AgentHostException"/>.
    /// </summary>
    public LoraAdapter LoadLoraAdapter(string path)
    {
        var file = GgufFile.Read(path);
        ValidateLora(file);
        return _loras.GetOrAdd(file.Path, key =>
        {
            // llama.cpp refuses an adapter by logging an error and returning a null pointer, which LLamaSharp keeps
            // internal: the error it logs on this thread is the public signal.
            LoraAdapter? adapter = null;
            Exception? failure = null;
            var errors = "";
            try
            {
                adapter = NativeRuntime.CaptureErrors(() => Weights.NativeHandle.LoadLoraFromFile(key), out errors);
            }
            catch (Exception e) when (e is InvalidOperationException or RuntimeError or IOException or UnauthorizedAccessException)
            {
                failure = e;
            }
            if (adapter is null || errors.Length > 0)
            {
                var cause = errors.Length > 0 ? errors : failure?.Message ?? "the native log has details";
                throw new AgentHostException(ErrorKind.InvalidModelFile, $"llama.cpp could not load LoRA adapter '{key}' for model {Name}: {cause}", failure);
            }
            return adapter;
        });
    }

    // The checks llama.cpp's adapter loader makes, done first so that a mismatch is one clear error.
    private void ValidateLora(GgufFile lora)
    {
        AgentHostException Invalid(string why) => new(ErrorKind.InvalidModelFile, $"'{lora.Path}' is not a LoRA adapter for model {Name}: {why}.");
        if (lora.GetString("general.type") != "adapter" || lora.GetString("adapter.type") != "lora")
            throw Invalid("it lacks general.type 'adapter' and adapter.type 'lora'");
        if (lora.Architecture != File.Architecture)
            throw Invalid($"it is for architecture '{lora.Architecture}', the model is '{File.Architecture}'");
        var pairs = 0;
        foreach (var tensor in lora.Tensors)
        {
            // llama.cpp's loader accepts only LoRA pairs (and norms, which it skips).
            if (tensor.Name.EndsWith(".lora_b", StringComparison.Ordinal))
            {
                if (!lora.Tensors.Any(t => t.Name == tensor.Name[..^1] + "a"))
                    throw Invalid($"'{tensor.Name[..^".lora_b".Length]}.lora_a' is missing");
                continue;
            }
            if (!tensor.Name.EndsWith(".lora_a", StringComparison.Ordinal))
            {
                if (tensor.Name.EndsWith("_norm.weight", StringComparison.Ordinal))
                    continue;
                throw Invalid($"tensor '{tensor.Name}' is neither a '.lora_a' / '.lora_b' half nor a norm");
            }
            var a = tensor;
            var name = a.Name[..^".lora_a".Length];
            var b = lora.Tensors.FirstOrDefault(t => t.Name == name + ".lora_b") ?? throw Invalid($"'{name}.lora_b' is missing");
            var target = File.Tensors.FirstOrDefault(t => t.Name == name) ?? throw Invalid($"the model has no tensor '{name}'");
            if (a.Dimensions.Length != 2 || b.Dimensions.Length != 2 || target.Dimensions.Length != 2)
                throw Invalid($"'{name}' and its LoRA pair must be matrices");
            var embedding = name == "token_embd.weight";   // llama.cpp stores this pair the other way round
            var fits = embedding
                ? target.Dimensions[0] == b.Dimensions[1] && target.Dimensions[1] == a.Dimensions[1]
                : target.Dimensions[0] == a.Dimensions[0] && target.Dimensions[1] == b.Dimensions[1] && a.Dimensions[1] == b.Dimensions[0];
            if (!fits)
                throw Invalid($"the shapes of '{name}.lora_a' [{string.Join(", ", a.Dimensions)}] and '.lora_b' [{string.Join(", ", b.Dimensions)}] do not fit the model's [{string.Join(", ", target.Dimensions)}]");
            pairs++;
        }
        if (pairs == 0)
            throw Invalid("it holds no lora_a / lora_b tensor pair");
    }

    /// <summary>Creates a new session (a context with its own KV cache) on the model's scheduler thread.</summary>
    public Task<InferenceSession> CreateSessionAsync(CancellationToken cancellationToken = default)
        => CreateSessionAsync(hiddenStates: false, cancellationToken);

    /// <summary>
    /// Creates a session whose decodes also return final hidden states when <paramref name="hiddenStates"/>
    /// (embeddings, tool-token heads), even if the model was loaded without <see cref="ModelSettings.HiddenStates"/>.
    /// </summary>
    public Task<InferenceSession> CreateSessionAsync(bool hiddenStates, CancellationToken cancellationToken = default)
        => Scheduler.RunAsync(() => new InferenceSession(this, hiddenStates), cancellationToken);

    /// <summary>Stops the scheduler and frees the weights.</summary>
    public void Dispose()
    {
        Scheduler.Dispose();
        Weights.Dispose();
    }

    // The context size the model gets (0 takes the trained one), bounded by the trained context and by memory:
    // llama.cpp allocates the whole KV cache up front and crashes when it cannot.
    private static int CheckContextSize(string name, ModelSettings settings, ModelShape shape)
    {
        var key = ModelSettings.ConfigurationKey(name, nameof(ModelSettings.ContextSize));
        var contextSize = settings.ContextSize == 0 ? shape.TrainedContext : settings.ContextSize;
        var limit = (long)shape.TrainedContext * ModelSettings.MaxContextFactor;
        if (contextSize > limit)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"{key} ({contextSize}) exceeds {ModelSettings.MaxContextFactor} times the {shape.TrainedContext} tokens model {name} was trained with ({limit}).");
        }
        if (contextSize < settings.Sequences)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"{key} ({contextSize}) must be at least Sequences ({settings.Sequences}).");
        var available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        var needed = contextSize * shape.KvBytesPerToken;
        if (needed > available)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"{key} ({contextSize}) needs about {needed >> 20} MiB of KV cache for model {name}, more than the {available >> 20} MiB of memory available.");
        }
        return contextSize;
    }

    private static int ClampThreads(int requested, int cores, string name, ILogger logger)
    {
        if (requested == 0)
            return cores;
        if (requested <= cores)
            return requested;
        // More compute threads than cores only makes llama.cpp's thread teams fight each other.
        logger.LogWarning("{Setting} = {Requested} exceeds the {Cores} cores of this machine; using {Cores}.", name, requested, cores, cores);
        return cores;
    }
}
