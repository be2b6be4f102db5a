using System.Net;
using System.Text;
using System.Text.Json;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests;
using OpenAI.Chat;

namespace AgentHost.Tests;

/// <summary>
/// Issue 26: logprobs / top_logprobs (chat and the legacy completions shape, streamed too) read by the official OpenAI .NET
/// client, logit_bias through it, and the fields' errors naming them; the server keeps serving. The numbers themselves
/// are checked against the model's own softmax in AgentHost.Llama.Tests' TokenLogprobsTests.
/// </summary>
public sealed class ServerLogprobsTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task TheOpenAiClientReadsTokenLogprobsAndTheirAlternativesStreamedOrNot()
    {
        var chat = _server.OpenAi().GetChatClient("stories260k");
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 16, Temperature = 0, IncludeLogProbabilities = true, TopLogProbabilityCount = 3 };
        UserChatMessage[] messages = [new("Tell me a story about a dog.")];

        ChatCompletion completion = await chat.CompleteChatAsync(messages, options);
        var streamed = new List<ChatTokenLogProbabilityDetails>();
        var chunksWithText = 0;
        await foreach (var update in chat.CompleteChatStreamingAsync(messages, options))
        {
            streamed.AddRange(update.ContentTokenLogProbabilities);
            if (update.ContentUpdate.Count > 0 && update.ContentUpdate[0].Text.Length > 0)
                chunksWithText++;
        }

        var tokens = completion.ContentTokenLogProbabilities;
        Assert.Equal(completion.Usage.OutputTokenCount, tokens.Count);
        foreach (var token in tokens)
        {
            Assert.True(token.LogProbability <= 0);
            Assert.Equal(Encoding.UTF8.GetBytes(token.Token), token.Utf8Bytes!.Value.ToArray());
            Assert.Equal(3, token.TopLogProbabilities.Count);
            // Greedy (temperature 0) takes the most likely token.
            Assert.Equal(token.Token, token.TopLogProbabilities[0].Token);
            Assert.Equal(token.LogProbability, token.TopLogProbabilities[0].LogProbability, 1e-6);
            Assert.True(token.TopLogProbabilities[1].LogProbability <= token.TopLogProbabilities[0].LogProbability);
        }
        Assert.StartsWith(completion.Content[0].Text, string.Concat(tokens.Select(t => t.Token)));
        // Streamed: per chunk, the same tokens with the same numbers.
        Assert.True(chunksWithText > 1);
        Assert.Equal(tokens.Select(t => t.Token), streamed.Select(t => t.Token));
        // (The second request reuses the cached prompt, decoded in another batch shape: the logits may differ in the last bits.)
        for (var i = 0; i < tokens.Count; i++)
            Assert.Equal(tokens[i].LogProbability, streamed[i].LogProbability, 1e-2);
    }

    [Fact]
    public async Task ALogitBiasOfMinus100OnTheGreedyTokenChangesTheReply()
    {
        var chat = _server.OpenAi().GetChatClient("stories260k");
        UserChatMessage[] messages = [new("Tell me a story about a dog.")];
        var plainOptions = new ChatCompletionOptions { MaxOutputTokenCount = 12, Temperature = 0, IncludeLogProbabilities = true };
        ChatCompletion plain = await chat.CompleteChatAsync(messages, plainOptions);
        var first = plain.ContentTokenLogProbabilities[0].Utf8Bytes!.Value.ToArray();
        using var model = LlamaModel.Load("stories260k", Path.Combine(TestModels.Directory, "stories260K.gguf"), new ModelSettings { ContextSize = 64, Threads = TestModels.Threads });
        var ids = Enumerable.Range(0, model.Vocabulary.Count).Where(i => model.Vocabulary.GetBytes(i).SequenceEqual(first)).ToList();
        Assert.NotEmpty(ids);

        var biasedOptions = new ChatCompletionOptions { MaxOutputTokenCount = 12, Temperature = 0, IncludeLogProbabilities = true };
        foreach (var id in ids)
            biasedOptions.LogitBiases[id] = -100;
        ChatCompletion biased = await chat.CompleteChatAsync(messages, biasedOptions);

        Assert.NotEqual(plain.Content[0].Text, biased.Content[0].Text);
        Assert.NotEqual(first, biased.ContentTokenLogProbabilities[0].Utf8Bytes!.Value.ToArray());
    }

    [Fact]
    public async Task CompletionsAnswerTheLegacyShapeStreamedOrNot()
    {
        const string Body = """{"model": "stories260k", "prompt": "Once upon a time", "max_tokens": 12, "temperature": 0, "logprobs": 2""";
        var (status, body, _) = await _server.PostAsync("/v1/completions", Body + "}");

        Assert.Equal(HttpStatusCode.OK, status);
        var choice = body.GetProperty("choices")[0];
        var logprobs = choice.GetProperty("logprobs");
        var tokens = logprobs.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToList();
        var values = logprobs.GetProperty("token_logprobs").EnumerateArray().Select(v => v.GetDouble()).ToList();
        var tops = logprobs.GetProperty("top_logprobs").EnumerateArray().ToList();
        var offsets = logprobs.GetProperty("text_offset").EnumerateArray().Select(o => o.GetInt32()).ToList();
        Assert.Equal(body.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), tokens.Count);
        Assert.Equal(tokens.Count, values.Count);
        Assert.Equal(tokens.Count, tops.Count);
        Assert.Equal(0, offsets[0]);
        for (var i = 0; i < tokens.Count; i++)
        {
            Assert.True(values[i] <= 0);
            Assert.InRange(tops[i].EnumerateObject().Count(), 1, 2);
            Assert.Equal(values[i], tops[i].GetProperty(tokens[i]).GetDouble(), 1e-9);   // greedy: the chosen token is the likeliest
            if (i > 0)
                Assert.Equal(offsets[i - 1] + tokens[i - 1].Length, offsets[i]);
        }
        Assert.StartsWith(choice.GetProperty("text").GetString()!, string.Concat(tokens));

        // Streamed: each event's tokens, in order, are the same.
        var response = await _server.Http.PostAsync("/v1/completions", new StringContent(Body + ", \"stream\": true}", Encoding.UTF8, "application/json"));
        var streamed = new List<string>();
        foreach (var line in (await response.Content.ReadAsStringAsync()).Split('\n'))
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal))
                continue;
            var chunk = JsonDocument.Parse(line[6..]).RootElement.GetProperty("choices")[0];
            if (chunk.GetProperty("logprobs") is { ValueKind: JsonValueKind.Object } part)
                streamed.AddRange(part.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!));
        }
        Assert.Equal(tokens, streamed);
    }

    [Theory]
    [InlineData("/v1/chat/completions", "\"logprobs\": true, \"top_logprobs\": 21", "top_logprobs")]
    [InlineData("/v1/chat/completions", "\"top_logprobs\": 2", "top_logprobs")]
    [InlineData("/v1/chat/completions", "\"logprobs\": 3", "logprobs")]
    [InlineData("/v1/completions", "\"logprobs\": 21", "logprobs")]
    [InlineData("/v1/completions", "\"logprobs\": true", "logprobs")]
    [InlineData("/v1/chat/completions", "\"logit_bias\": {\"5\": 101}", "logit_bias")]
    [InlineData("/v1/chat/completions", "\"logit_bias\": {\"x\": 1}", "logit_bias")]
    [InlineData("/v1/chat/completions", "\"logit_bias\": [1]", "logit_bias")]
    [InlineData("/v1/chat/completions", "\"logit_bias\": {\"99999999\": 1}", "logit_bias")]
    [InlineData("/v1/completions", "\"logit_bias\": {\"512\": 1}", "logit_bias")]
    [InlineData("/v1/chat/completions", "\"logprobs\": true, \"decoding_strategy\": \"recycling\"", "logprobs")]
    [InlineData("/v1/chat/completions", "\"logit_bias\": {\"5\": 1}, \"decoding_strategy\": \"cautious\"", "logit_bias")]
    public async Task EachBadTokenLevelFieldIsA400NamingItAndTheServerLives(string endpoint, string field, string param)
    {
        var start = endpoint == "/v1/completions" ? "\"prompt\": \"Once\"" : "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]";
        var (status, body, _) = await _server.PostAsync(endpoint, $"{{\"model\": \"stories260k\", {start}, \"max_tokens\": 4, {field}}}");

        Assert.True(status == HttpStatusCode.BadRequest, body.ToString());
        Assert.Equal(param, body.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal(HttpStatusCode.OK, (await _server.PostAsync(endpoint, $"{{\"model\": \"stories260k\", {start}, \"max_tokens\": 4}}")).Status);
    }
}
