namespace AgentHost.Server;

/// <summary>The <c>Server</c> configuration section: where and how <c>serve</c> listens.</summary>
internal sealed class ServerOptions
{
    public const string SectionName = "Server";

    /// <summary>Listen addresses (loopback by default: expose it deliberately).</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>When set, every endpoint but /health requires <c>Authorization: Bearer KEY</c>.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Requests per model that may wait for or hold a slot; more get 429 (default 32).</summary>
    public int MaxQueue { get; set; } = 32;

    /// <summary>Session slots per model (each keeps its own prompt cache; default 4).</summary>
    public int Slots { get; set; } = 4;

    /// <summary>
    /// Continuous batching of greedy/sampling requests (see <c>LlamaChatClientOptions.ContinuousBatching</c>):
    /// more throughput with many clients; each batched request then holds ContextSize / Sequences tokens. Default off.
    /// </summary>
    public bool Batching { get; set; }

    /// <summary>Largest request body in bytes (default 4 MiB); larger gets 413.</summary>
    public long MaxBodyBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Most tokens per reply when a request sets none (default 512).</summary>
    public int DefaultMaxTokens { get; set; } = 512;
}
