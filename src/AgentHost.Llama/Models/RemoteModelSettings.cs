namespace AgentHost.Llama.Models;

/// <summary>
/// A catalog entry served by an OpenAI-compatible endpoint (another AgentHost <c>serve</c>, vLLM, llama-server, Ollama)
/// instead of a local GGUF file: the <c>AgentHost:Models:NAME:Remote</c> section. Chat, agents and <c>serve</c> use it
/// through a chat client; what reads a model's logits or weights (token-level strategies, analysis, tool tokens,
/// embeddings, bench) refuses it.
/// </summary>
public sealed class RemoteModelSettings
{
    /// <summary>Base URL of the OpenAI-compatible API, the part before <c>/chat/completions</c> (e.g. <c>http://gpu-1:8000/v1</c>).</summary>
    public string? Endpoint { get; set; }

    /// <summary>The model name the endpoint knows; null or empty sends the catalog name.</summary>
    public string? Model { get; set; }

    /// <summary>The API key sent as <c>Authorization: Bearer</c>; prefer <see cref="ApiKeyVariable"/>, which keeps it out of files.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Name of an environment variable holding the API key; it wins over <see cref="ApiKey"/>.</summary>
    public string? ApiKeyVariable { get; set; }

    /// <summary>Seconds one try may wait for the endpoint (for a stream: between its chunks) before it counts as failed (default 120).</summary>
    public int TimeoutSeconds { get; set; } = 120;

    /// <summary>Retries, with exponential backoff, of a try that failed to connect, timed out, or got 408, 429 or 5xx (default 2).</summary>
    public int MaxRetries { get; set; } = 2;

    /// <summary>Largest <see cref="MaxRetries"/>.</summary>
    public const int MaxRetryCount = 10;

    /// <summary>The endpoint as a URI (valid after <see cref="Validate"/>).</summary>
    public Uri EndpointUri => new(Endpoint!.Trim());

    /// <summary>A copy, so that callers never change the catalog.</summary>
    public RemoteModelSettings Clone() => (RemoteModelSettings)MemberwiseClone();

    /// <summary>The remote model name: <see cref="Model"/>, else the catalog name.</summary>
    public string RemoteName(string model) => string.IsNullOrWhiteSpace(Model) ? model : Model.Trim();

    /// <summary>The API key to send: the variable <see cref="ApiKeyVariable"/> names, else <see cref="ApiKey"/>, else none.</summary>
    /// <exception cref="AgentHostException">The named variable is not set.</exception>
    public string? ResolveApiKey(string model)
    {
        if (string.IsNullOrWhiteSpace(ApiKeyVariable))
            return string.IsNullOrEmpty(ApiKey) ? null : ApiKey;
        var value = Environment.GetEnvironmentVariable(ApiKeyVariable.Trim());
        return !string.IsNullOrEmpty(value) ? value
            : throw new AgentHostException(ErrorKind.InvalidArgument, $"The environment variable {ApiKeyVariable.Trim()} ({ModelSettings.ConfigurationKey(model, "Remote:ApiKeyVariable")}) is not set; it must hold the API key of remote model '{model}'.");
    }

    /// <summary>The error of anything that needs the model's logits or weights, asked of remote entry <paramref name="model"/>.</summary>
    public AgentHostException NeedsLocalModel(string model, string? what = null) => new(ErrorKind.InvalidArgument,
        $"Model '{model}' is remote (an OpenAI-compatible endpoint at {Endpoint}), and {what ?? "this"} needs a local GGUF model: "
        + "it reads the model's logits or weights, which such an endpoint does not give. Chat, agents and serve use a remote model as is.");

    /// <summary>Checks the settings of catalog entry <paramref name="model"/>.</summary>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidArgument"/> naming the first offending key.</exception>
    public void Validate(string model)
    {
        void Require(bool ok, string setting, string rule) => Guard.Require(ok, $"{ModelSettings.ConfigurationKey(model, "Remote:" + setting)} {rule}.");

        Require(Uri.TryCreate(Endpoint?.Trim(), UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https", nameof(Endpoint),
            $"must be the absolute http(s) URL of an OpenAI-compatible API (e.g. http://gpu-1:8000/v1), not '{Endpoint}'");
        Require(TimeoutSeconds is >= 1 and <= 86_400, nameof(TimeoutSeconds), $"must be between 1 and 86400, not {TimeoutSeconds}");
        Require(MaxRetries is >= 0 and <= MaxRetryCount, nameof(MaxRetries), $"must be between 0 and {MaxRetryCount}, not {MaxRetries}");
    }
}
