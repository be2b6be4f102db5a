using System.Net;
using AgentHost.Llama;

namespace AgentHost.Server;

/// <summary>The <c>Server</c> configuration section: where and how <c>serve</c> listens.</summary>
internal sealed class ServerOptions
{
    public const string SectionName = "Server";

    /// <summary>Listen addresses, ';'-separated (loopback by default: expose it deliberately). Hosts must be IP addresses, <c>localhost</c> or <c>*</c>.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>
    /// Host header names accepted besides IP addresses and <c>localhost</c>, ';'-separated;
    /// <c>*</c> accepts any. Other names get 421: a DNS-rebinding page cannot reach a loopback server under its own name.
    /// </summary>
    public string AllowedHosts { get; set; } = "";

    /// <summary>When set, every endpoint but /health requires <c>Authorization: Bearer KEY</c>.</summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// Catalog names served, ';'-separated. Empty (default): the default model and every catalog entry whose file is
    /// already on this machine. <c>serve</c> fetches a listed model that is missing before it listens; requests never do.
    /// </summary>
    public string Models { get; set; } = "";

    /// <summary>The names in <see cref="Models"/>.</summary>
    public IReadOnlyList<string> ModelNames() => Models.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Requests per model admitted at once (waiting for or holding a slot, embeddings included); more get 429 (default 32).</summary>
    public int MaxQueue { get; set; } = 32;

    /// <summary>
    /// Continuous batching (see <c>LlamaChatClientOptions.ContinuousBatching</c>): every request, whatever its strategy,
    /// decodes in one shared batch with the others; more throughput with many clients. Default on; false decodes one
    /// request at a time.
    /// </summary>
    public bool Batching { get; set; } = true;

    /// <summary>Largest request body in bytes (default 4 MiB); larger gets 413.</summary>
    public long MaxBodyBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Seconds a client may take to send its whole request body (default 30); slower gets 408.</summary>
    public int BodyTimeoutSeconds { get; set; } = 30;

    /// <summary>Most inputs in one <c>/v1/embeddings</c> request (default 64); more get 413.</summary>
    public int MaxEmbeddingInputs { get; set; } = 64;

    /// <summary>Most tokens per reply when a request sets none (default 512).</summary>
    public int DefaultMaxTokens { get; set; } = 512;

    /// <summary>Seconds a stop (SIGTERM, Ctrl+C) waits for in-flight requests before closing them (default 10).</summary>
    public int ShutdownTimeoutSeconds { get; set; } = 10;

    /// <summary>
    /// Folder for server-side state, named by the server, one file per model (recycling matrices:
    /// <c>MODEL.recycling-matrix</c>). Null (default): such state lives in memory only. Requests never name files.
    /// </summary>
    public string? StateDirectory { get; set; }

    /// <summary>The listen URLs, each checked: absolute http(s) with an IP, <c>localhost</c> or <c>*</c> host (a name would bind every interface).</summary>
    public IReadOnlyList<Uri> ListenUris()
    {
        var uris = new List<Uri>();
        foreach (var text in Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // Kestrel's "*" and "+" wildcards are not valid URI hosts; they mean every interface, as 0.0.0.0 does.
            var parsed = Uri.TryCreate(text.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri);
            if (!parsed || uri!.Scheme is not ("http" or "https") || uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.UserInfo.Length > 0)
                throw Invalid("Urls", $"'{text}' is not a listen URL like http://127.0.0.1:8080");
            if (uri.HostNameType is not (UriHostNameType.IPv4 or UriHostNameType.IPv6) && !uri.IsLoopback)
                throw Invalid("Urls", $"'{text}' names the host '{uri.Host}'; listen on an IP address, localhost or * (a host name would bind every interface)");
            uris.Add(uri);
        }
        return uris.Count > 0 ? uris : throw Invalid("Urls", "it holds no listen URL");
    }

    /// <summary>Whether a request's Host header is one this server answers to (see <see cref="AllowedHosts"/>).</summary>
    public bool IsAllowedHost(string host)
    {
        if (host.Length == 0)
            return false;
        if (IPAddress.TryParse(host.Trim('[', ']'), out _) || string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
            return true;
        foreach (var allowed in AllowedHosts.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (allowed == "*" || string.Equals(allowed, host, StringComparison.OrdinalIgnoreCase))
                return true;
        }
        return false;
    }

    /// <summary>Checks every setting, naming the key of the first bad one (a usage error: exit 2).</summary>
    public void Validate()
    {
        ListenUris();
        Require(MaxQueue >= 1, "MaxQueue", MaxQueue, "a whole number of at least 1");
        Require(MaxBodyBytes >= 1, "MaxBodyBytes", MaxBodyBytes, "a byte count of at least 1");
        Require(BodyTimeoutSeconds >= 1, "BodyTimeoutSeconds", BodyTimeoutSeconds, "a whole number of seconds of at least 1");
        Require(MaxEmbeddingInputs >= 1, "MaxEmbeddingInputs", MaxEmbeddingInputs, "a whole number of at least 1");
        Require(DefaultMaxTokens >= 1, "DefaultMaxTokens", DefaultMaxTokens, "a whole number of at least 1");
        Require(ShutdownTimeoutSeconds >= 0, "ShutdownTimeoutSeconds", ShutdownTimeoutSeconds, "a whole number of seconds of at least 0");
        if (StateDirectory is { Length: 0 })
            throw Invalid("StateDirectory", "it is empty (leave it unset to keep state in memory)");
    }

    private static void Require(bool ok, string key, long value, string expected)
    {
        if (!ok)
            throw Invalid(key, $"it must be {expected}, not {value}");
    }

    private static AgentHostException Invalid(string key, string problem)
        => new(ErrorKind.InvalidArgument, $"{SectionName}:{key} is invalid: {problem}.");
}
