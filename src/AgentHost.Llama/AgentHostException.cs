namespace AgentHost.Llama;

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

    /// <summary>
    /// The request field the error is about, in the OpenAI / llama-server request's spelling (<c>top_p</c>,
    /// <c>min_p</c>, <c>logit_bias</c>, a strategy knob's key), or null when it is about no one field. Hosts report
    /// it, e.g. as the <c>param</c> of an HTTP 400.
    /// </summary>
    public string? Parameter { get; init; }
}
