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
    /// <summary>A remote model's endpoint could not be reached, refused the request or did not answer in time.</summary>
    RemoteFailed,
    /// <summary>llama.cpp's native library could not be loaded: the app references no LLamaSharp backend package that fits the machine.</summary>
    NativeBackendMissing,
}
