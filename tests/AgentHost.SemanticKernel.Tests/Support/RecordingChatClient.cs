using Microsoft.Extensions.AI;

namespace AgentHost.SemanticKernel.Tests.Support;

/// <summary>
/// An <see cref="IChatClient"/> test double that stands in for the model: it records every request
/// (messages and options) and answers with what <c>respond</c> returns for it.
/// </summary>
internal sealed class RecordingChatClient(Func<IReadOnlyList<ChatMessage>, ChatOptions?, ChatResponse>? respond = null) : IChatClient
{
    public List<(IReadOnlyList<ChatMessage> Messages, ChatOptions? Options)> Requests { get; } = [];

    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages.ToList();
        Requests.Add((list, options));
        return Task.FromResult(respond?.Invoke(list, options) ?? new ChatResponse(new ChatMessage(ChatRole.Assistant, "ok")));
    }

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("The tests use non-streaming calls.");

    private readonly ChatClientMetadata _metadata = new("recording-test-double");

    // SK's prompt functions wrap the client in a ChatClientAIService, which requires ChatClientMetadata.
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceType == typeof(ChatClientMetadata) ? _metadata : serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }
}
