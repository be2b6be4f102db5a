// Microsoft.Extensions.AI on a local GGUF model through the AgentHost packages: IChatClient, streaming,
// and decoding strategies chosen per request in ChatOptions.AdditionalProperties. No Semantic Kernel API.
// Run: dotnet run -- path/to/stories260K.gguf   (or set AGENTHOST_MODELS_DIR)
using System.Text;
using AgentHost.Llama;
using AgentHost.Samples;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

var modelPath = SampleModel.PathFrom(args);
if (modelPath is null)
{
    return 1;
}

// Registration, one line: an IChatClient on the model (a catalog name such as "stories260k" works too),
// loaded once at first use and disposed with the container.
using var provider = new ServiceCollection().AddLlamaChatClient(modelPath).BuildServiceProvider();
var client = provider.GetRequiredService<IChatClient>();
try
{

    var metadata = client.GetService<ChatClientMetadata>();
    Console.WriteLine($"[client] provider {metadata?.ProviderName}, model {metadata?.DefaultModelId}");

    // One response (greedy by default).
    var response = await client.GetResponseAsync("Once upon a time", new ChatOptions { MaxOutputTokens = 24 });
    Console.WriteLine($"[response] {response.Text}");
    Console.WriteLine($"[response] {response.Usage?.OutputTokenCount} tokens, finish reason {response.FinishReason}");

    // Streaming: the same greedy text, update by update.
    var streamed = new StringBuilder();
    var updates = 0;
    await foreach (var update in client.GetStreamingResponseAsync("Once upon a time", new ChatOptions { MaxOutputTokens = 24 }))
    {
        Console.Write(update.Text);
        streamed.Append(update.Text);
        updates++;
    }
    Console.WriteLine();
    Console.WriteLine($"[streaming] {updates} updates, equals the response: {streamed.ToString() == response.Text}");

    // A decoding strategy per request: prompt lookup decoding is lossless, so it equals greedy.
    var lookup = await client.GetResponseAsync("Once upon a time", new ChatOptions
    {
        MaxOutputTokens = 24,
        AdditionalProperties = new() { ["decoding_strategy"] = "lookup" },
    });
    Console.WriteLine($"[decoding {lookup.AdditionalProperties?["decoding_strategy"]}] {lookup.Text}");
    Console.WriteLine($"[decoding lookup] equals greedy: {lookup.Text == response.Text}");

    // Sampling with a seed reproduces itself.
    ChatOptions Sampled() => new() { MaxOutputTokens = 24, Temperature = 0.8f, Seed = 42, AdditionalProperties = new() { ["decoding_strategy"] = "sample" } };
    var first = await client.GetResponseAsync("Once upon a time", Sampled());
    var second = await client.GetResponseAsync("Once upon a time", Sampled());
    Console.WriteLine($"[decoding sample] {first.Text}");
    Console.WriteLine($"[decoding sample] same seed, same text: {first.Text == second.Text}");
}
catch (AgentHostException ex)
{
    // A file that is not a usable model: one line, exit 1.
    Console.Error.WriteLine($"error: {ex.Message}");
    return 1;
}
return 0;
