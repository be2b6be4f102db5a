namespace AgentHost.Llama.Models;

/// <summary>
/// Makes a catalog entry an exact compute stand-in (the <c>AgentHost:Models:NAME:StandIn</c> section): a model the
/// resolver builds into the user cache from <see cref="Source"/>, widened to a realistic shape with zero
/// dimensions, so that it predicts exactly what the source predicts at the cost of the larger shape
/// (see <see cref="ModelWidener"/>).
/// </summary>
public sealed class StandInSettings
{
    /// <summary>Catalog name of the source model: a llama-architecture GGUF with F32 tensors, e.g. <c>stories260k</c>.</summary>
    public string? Source { get; set; }

    /// <summary>Width of the residual stream (<c>llama.embedding_length</c>); at least the source's.</summary>
    public int EmbeddingLength { get; set; } = 768;

    /// <summary>Width of the feed-forward layers (<c>llama.feed_forward_length</c>); at least the source's.</summary>
    public int FeedForwardLength { get; set; } = 3072;

    /// <summary>Number of transformer blocks (<c>llama.block_count</c>); at least the source's.</summary>
    public int BlockCount { get; set; } = 12;

    /// <summary>
    /// When set (a llama.cpp quantization type such as <c>Q4_K_M</c>), the entry is <see cref="Source"/> quantized by
    /// llama.cpp's quantizer instead of widened: the shape settings are not used, and the source may itself be a
    /// (widened, F32) stand-in, as <c>stories260k-wide-q4</c> is of <c>stories260k-wide</c>.
    /// </summary>
    public string? Quantize { get; set; }

    /// <summary>A copy.</summary>
    public StandInSettings Clone() => (StandInSettings)MemberwiseClone();
}
