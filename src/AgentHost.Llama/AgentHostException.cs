namespace AgentHost.Llama;

/// <summary>What kind of user-facing failure an <see cref="AgentHostException"/> reports.</summary>
public enum ErrorKind
{
    /// <summary>An option or argument has an invalid value.</summary>
    InvalidArgument,
    /// <summary>A model name is not in the catalog, or a model file cannot be found.</summary>
    ModelNotFound,
    /// <summary>A model file exists but is not a usable GGUF file.</summary>
    InvalidModelFile,
    /// <summary>Downloading a model failed (network, HTTP status or checksum).</summary>
    DownloadFailed,
    /// <summary>The input does not fit the model's context window.</summary>
    ContextOverflow,
    /// <summary>The input holds text the model's vocabulary cannot encode.</summary>
    UnsupportedInput,
    /// <summary>A configured plugin is unknown, or a prompt plugin folder is missing or malformed.</summary>
    InvalidPlugin,
}

/// <summary>
/// A failure caused by the user's input or environment (bad path, bad option, unknown model ...).
/// Its message is one clear sentence meant to be shown as is; hosts print it without a stack trace.
/// </summary>
public sealed class AgentHostException : Exception
{
    /// <summary>Creates the exception.</summary>
    public AgentHostException(ErrorKind kind, string message, Exception? innerException = null)
        : base(message, innerException) => Kind = kind;

    /// <summary>The kind of failure, e.g. to choose an exit code or an HTTP status.</summary>
    public ErrorKind Kind { get; }
}
