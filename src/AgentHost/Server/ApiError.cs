using AgentHost.Llama;

namespace AgentHost.Server;

/// <summary>An error answered in OpenAI's shape: <c>{"error": {"message", "type", "param", "code"}}</c> with its HTTP status.</summary>
internal sealed class ApiError(int status, string message, string type = "invalid_request_error", string? code = null, string? param = null) : Exception(message)
{
    public int Status { get; } = status;

    public string Type { get; } = type;

    public string? Code { get; } = code;

    public string? Param { get; } = param;

    public static ApiError BadRequest(string message, string? param = null) => new(StatusCodes.Status400BadRequest, message, param: param);

    /// <summary>The status and shape of an engine error: user mistakes are 400s, a remote model's endpoint failing 502, a model not on this machine 503, the rest 500.</summary>
    public static ApiError From(AgentHostException error) => error.Kind switch
    {
        ErrorKind.ContextOverflow => new(StatusCodes.Status400BadRequest, error.Message, code: "context_length_exceeded", param: error.Parameter),
        ErrorKind.InvalidArgument => new(StatusCodes.Status400BadRequest, error.Message, param: error.Parameter),
        ErrorKind.RemoteFailed => new(StatusCodes.Status502BadGateway, error.Message, "server_error", "upstream_error"),
        // A served model whose file (or models folder) is not there: the operator's to fix, as a missing download is.
        ErrorKind.ModelNotFound => new(StatusCodes.Status503ServiceUnavailable, error.Message, "server_error", "model_unavailable"),
        _ => new(StatusCodes.Status500InternalServerError, error.Message, "server_error"),
    };

    public ErrorResponse Body => new(new ErrorBody(Message, Type, Param, Code));

    public async Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = Status;
        await response.WriteAsJsonAsync(Body, OpenAiJsonContext.Default.ErrorResponse);
    }
}
