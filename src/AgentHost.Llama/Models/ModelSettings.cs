namespace AgentHost.Llama.Models;

/// <summary>One named model of the catalog (the <c>AgentHost:Models:NAME</c> section of appsettings.json).</summary>
public sealed class ModelSettings
{
    /// <summary>File name looked up in the models folder and the user cache, e.g. <c>stories260K.gguf</c>.</summary>
    public string? File { get; set; }

    /// <summary>
    /// Public download URL used when the file is found nowhere locally: an http(s) URL, or a Hugging Face file
    /// reference <c>hf:OWNER/REPO/FILE</c>, fetched from <see cref="AgentHostOptions.HuggingFaceEndpoint"/> (a mirror, say).
    /// </summary>
    public string? Url { get; set; }

    /// <summary>Expected SHA-256 of the file (hex); a download that does not match is discarded.</summary>
    public string? Sha256 { get; set; }

    /// <summary>The file's size in bytes, approximate (shown before a download); 0 when unknown.</summary>
    public long Size { get; set; }

    /// <summary>The model's licence, as its publisher names it (e.g. <c>Apache-2.0</c>); shown by <c>models show</c>.</summary>
    public string? License { get; set; }

    /// <summary>Context size in tokens; 0 takes the size the model was trained with.</summary>
    public int ContextSize { get; set; }

    /// <summary>Threads for single-token decodes; 0 uses every core.</summary>
    public int Threads { get; set; }

    /// <summary>Threads for multi-token batches (prefill, speculative trees); 0 uses <see cref="Threads"/>.</summary>
    public int BatchThreads { get; set; }

    /// <summary>Largest number of tokens one decode call may hold.</summary>
    public int BatchSize { get; set; } = 512;

    /// <summary>
    /// How many parallel sequences a context supports (1 to 256). The default, 40, is the leaf count of Token Recycling's
    /// <c>2.2.2</c> tree (each leaf verifies in a sequence of its own); with a unified KV cache a sequence costs one
    /// output row (n_vocab floats) and a token array of ContextSize ints per context, not cache cells.
    /// </summary>
    public int Sequences { get; set; } = 40;

    /// <summary>Layers offloaded to the GPU (CUDA backend only; 0 keeps everything on the CPU).</summary>
    public int GpuLayers { get; set; }

    /// <summary>Flash attention mode.</summary>
    public FlashAttentionMode FlashAttention { get; set; } = FlashAttentionMode.Auto;

    /// <summary>Whether contexts also return hidden states (needed by tool tokens).</summary>
    public bool HiddenStates { get; set; }

    /// <summary>Policy for characters a vocabulary without byte fallback cannot encode.</summary>
    public UnsupportedCharacterPolicy UnsupportedCharacters { get; set; } = UnsupportedCharacterPolicy.Replace;

    /// <summary>
    /// Chat format name (e.g. <c>chatml</c>, <c>llama3</c>, <c>plain</c>) that overrides the one detected from the
    /// model's chat template; null or empty detects it.
    /// </summary>
    public string? ChatFormat { get; set; }

    /// <summary>When set, the file is not downloaded but built from another catalog entry (see <see cref="StandInSettings"/>).</summary>
    public StandInSettings? StandIn { get; set; }

    /// <summary>When set, the model is not a file but an OpenAI-compatible endpoint (see <see cref="RemoteModelSettings"/>).</summary>
    public RemoteModelSettings? Remote { get; set; }

    /// <summary>Largest <see cref="ContextSize"/> of any model, in tokens (a further bound is the model's trained context × <see cref="MaxContextFactor"/>).</summary>
    public const int MaxContextSize = 1 << 24;

    /// <summary>How many times its trained context a model's <see cref="ContextSize"/> may be.</summary>
    public const int MaxContextFactor = 8;

    /// <summary>Largest <see cref="BatchSize"/>.</summary>
    public const int MaxBatchSize = 1 << 16;

    /// <summary>Largest <see cref="Sequences"/> (larger values crash this llama.cpp build).</summary>
    public const int MaxSequences = 256;

    /// <summary>Largest <see cref="Threads"/> / <see cref="BatchThreads"/> (values above the core count are lowered to it at load).</summary>
    public const int MaxThreads = 1024;

    /// <summary>Largest <see cref="GpuLayers"/> (llama.cpp caps it at the model's layer count; 999 is the usual "all").</summary>
    public const int MaxGpuLayers = 10_000;

    /// <summary>A copy, so that per-request overrides never change the catalog.</summary>
    public ModelSettings Clone()
    {
        var copy = (ModelSettings)MemberwiseClone();
        copy.StandIn = StandIn?.Clone();
        copy.Remote = Remote?.Clone();
        return copy;
    }

    /// <summary>The configuration key of setting <paramref name="setting"/> of catalog model <paramref name="model"/>, for error messages.</summary>
    public static string ConfigurationKey(string model, string setting) => $"{AgentHostOptions.SectionName}:Models:{model}:{setting}";

    /// <summary>
    /// Checks every setting against the range llama.cpp survives, before any model file is read; the checks that need
    /// the model (context against its trained context and the memory its KV cache takes) run at load.
    /// </summary>
    /// <param name="model">The catalog name, used in the configuration key the error names.</param>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidArgument"/> naming the first offending key.</exception>
    public void Validate(string model)
    {
        void Require(bool ok, string setting, string rule) => Guard.Require(ok, $"{ConfigurationKey(model, setting)} {rule}.");

        Require(Size >= 0, nameof(Size), $"must be 0 (unknown) or a size in bytes, not {Size}");
        Require(ContextSize is 0 or (>= 1 and <= MaxContextSize), nameof(ContextSize), $"must be 0 (the model's own) or between 1 and {MaxContextSize}, not {ContextSize}");
        Require(Threads is >= 0 and <= MaxThreads, nameof(Threads), $"must be 0 (all cores) or between 1 and {MaxThreads}, not {Threads}");
        Require(BatchThreads is >= 0 and <= MaxThreads, nameof(BatchThreads), $"must be 0 (same as Threads) or between 1 and {MaxThreads}, not {BatchThreads}");
        Require(BatchSize is >= 1 and <= MaxBatchSize, nameof(BatchSize), $"must be between 1 and {MaxBatchSize}, not {BatchSize}");
        Require(Sequences is >= 1 and <= MaxSequences, nameof(Sequences), $"must be between 1 and {MaxSequences}, not {Sequences}");
        // llama.cpp reserves one output row per sequence in a batch and aborts the process (GGML_ASSERT) when that exceeds the batch.
        Require(BatchSize >= Sequences, nameof(BatchSize), $"({BatchSize}) must be at least Sequences ({Sequences})");
        // A cache split between the sequences gives each ContextSize / Sequences cells; zero cells aborts llama.cpp.
        Require(ContextSize == 0 || ContextSize >= Sequences, nameof(ContextSize), $"({ContextSize}) must be at least Sequences ({Sequences})");
        Require(GpuLayers is >= -1 and <= MaxGpuLayers, nameof(GpuLayers), $"must be -1 (all), 0 or up to {MaxGpuLayers}, not {GpuLayers}");
        // The binder accepts any number for an enum.
        Require(Enum.IsDefined(FlashAttention), nameof(FlashAttention), $"must be Auto, On or Off, not {FlashAttention}");
        Remote?.Validate(model);
        Require(Enum.IsDefined(UnsupportedCharacters), nameof(UnsupportedCharacters), $"must be Replace or Reject, not {UnsupportedCharacters}");
    }
}
