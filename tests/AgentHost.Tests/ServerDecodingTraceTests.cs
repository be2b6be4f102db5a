using System.Net;
using System.Text.Json;

namespace AgentHost.Tests;

/// <summary>
/// <c>decoding_trace</c> of chat completions (the web page's inspector reads it): each strategy's events agree with the
/// reply and with the strategy's own statistics, streamed or not; the field is opt-in and checked.
/// </summary>
public sealed class ServerDecodingTraceTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static string Body(string extra, int maxTokens = 48)
        => $$"""{"model": "stories260k", "messages": [{"role": "user", "content": "Once upon a time"}], "max_tokens": {{maxTokens}}, "decoding_trace": true{{extra}}}""";

    private static double Stat(JsonElement response, string name) => response.GetProperty("decoding").GetProperty("stats").GetProperty(name).GetDouble();

    private static List<string> Texts(JsonElement array) => array.EnumerateArray().Select(t => t.GetString()!).ToList();

    [Fact]
    public async Task RecyclingStepsEmitTheReplyAndCountWhatItsStatisticsCount()
    {
        var (status, response, _) = await _server.PostAsync("/v1/chat/completions", Body(""", "decoding_strategy": "recycling" """));

        Assert.Equal(HttpStatusCode.OK, status);
        var steps = response.GetProperty("decoding_trace").EnumerateArray().ToList();
        Assert.All(steps, s => Assert.Equal("draft", s.GetProperty("type").GetString()));
        AssertSteps(steps, response.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!, response);
    }

    [Fact]
    public async Task StreamedStepsArriveInOrderAndAddUpAsTheyDoUnstreamed()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(Body(""", "decoding_strategy": "lookup", "stream": true, "stream_options": {"include_usage": true} """), System.Text.Encoding.UTF8, "application/json"),
        };
        using var response = await _server.Http.SendAsync(request);
        var text = "";
        var steps = new List<JsonElement>();
        JsonElement last = default;
        foreach (var line in (await response.Content.ReadAsStringAsync()).Split('\n'))
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal))
                continue;
            var chunk = JsonDocument.Parse(line[6..]).RootElement.Clone();
            if (chunk.GetProperty("choices").EnumerateArray().FirstOrDefault() is { ValueKind: JsonValueKind.Object } choice && choice.GetProperty("delta").TryGetProperty("content", out var piece))
                text += piece.GetString();
            if (chunk.TryGetProperty("decoding_trace", out var events))
                steps.AddRange(events.EnumerateArray());
            if (chunk.TryGetProperty("decoding", out _))
                last = chunk;
        }

        Assert.True(steps.Count > 1);
        AssertSteps(steps, text, last);
    }

    // Steps follow each other (each starts where the previous one's tokens end, after the prefill's first token), their
    // emitted tokens are the reply after that token, and they count what the statistics count.
    private static void AssertSteps(List<JsonElement> steps, string reply, JsonElement response)
    {
        var position = 1;
        var emitted = "";
        foreach (var step in steps)
        {
            Assert.Equal(position, step.GetProperty("position").GetInt32());
            var tokens = Texts(step.GetProperty("emitted"));
            var accepted = Texts(step.GetProperty("accepted"));
            Assert.InRange(tokens.Count, Math.Max(1, accepted.Count), accepted.Count + 1);
            Assert.Equal(accepted, tokens.Take(accepted.Count));
            position += tokens.Count;
            emitted += string.Concat(tokens);
        }
        Assert.EndsWith(emitted, reply);
        Assert.True(reply.Length > emitted.Length);   // the first token came from the prefill
        Assert.Equal(Stat(response, "forwards"), steps.Count);
        Assert.Equal(Stat(response, "accepted_drafts"), steps.Sum(s => s.GetProperty("accepted").GetArrayLength()));
        Assert.Equal(Stat(response, "drafted_tokens"), steps.Sum(s => s.GetProperty("accepted").GetArrayLength() + s.GetProperty("rejected").GetArrayLength()));
    }

    [Fact]
    public async Task CautiousBranchingStepsHoldTheirTrialsAndTheWinnersTokensAreTheReplys()
    {
        var (status, response, _) = await _server.PostAsync("/v1/chat/completions", Body(""", "decoding_strategy": "cautious", "seed": 7 """));

        Assert.Equal(HttpStatusCode.OK, status);
        var steps = response.GetProperty("decoding_trace").EnumerateArray().ToList();
        Assert.NotEmpty(steps);
        Assert.Equal(Stat(response, "branching_steps"), steps.Count);
        Assert.Equal(Stat(response, "trials"), steps.Sum(s => s.GetProperty("trials").GetArrayLength()));
        var reply = response.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        foreach (var step in steps)
        {
            Assert.Equal("branch", step.GetProperty("type").GetString());
            var trials = step.GetProperty("trials").EnumerateArray().ToList();
            var winner = step.GetProperty("winner").GetInt32();
            // The winner has the lowest perplexity; its kept tokens are in the reply.
            Assert.Equal(trials.Min(t => t.GetProperty("perplexity").GetDouble()), trials[winner].GetProperty("perplexity").GetDouble());
            Assert.Contains(string.Concat(Texts(trials[winner].GetProperty("tokens")).Take(step.GetProperty("kept").GetInt32())), reply);
            Assert.True(step.GetProperty("entropy").GetDouble() > 0);
        }
    }

    [Fact]
    public async Task AGrammarIsMarkedWhereItBeginsAndLogprobsCarryEachStepsEntropy()
    {
        var (status, response, _) = await _server.PostAsync("/v1/chat/completions",
            Body(""", "response_format": {"type": "json_object"}, "logprobs": true, "top_logprobs": 20 """, maxTokens: 24));

        Assert.Equal(HttpStatusCode.OK, status);
        var grammar = Assert.Single(response.GetProperty("decoding_trace").EnumerateArray());
        Assert.Equal("grammar", grammar.GetProperty("type").GetString());
        Assert.Equal(0, grammar.GetProperty("position").GetInt32());
        foreach (var token in response.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content").EnumerateArray())
        {
            // Every -p log p is positive: the top 20's sum is a lower bound of the entropy, the uniform one an upper bound.
            var top = token.GetProperty("top_logprobs").EnumerateArray().Sum(t => -Math.Exp(t.GetProperty("logprob").GetDouble()) * t.GetProperty("logprob").GetDouble());
            Assert.InRange(token.GetProperty("entropy").GetDouble(), top - 1e-9, Math.Log(512));
        }
    }

    [Fact]
    public async Task WithoutTheFieldThereIsNoTraceAndAValueThatIsNotABooleanIsA400NamingIt()
    {
        var (_, plain, _) = await _server.PostAsync("/v1/chat/completions", Body("").Replace("\"decoding_trace\": true", "\"decoding_trace\": false", StringComparison.Ordinal));
        Assert.False(plain.TryGetProperty("decoding_trace", out _));

        var (status, error, _) = await _server.PostAsync("/v1/chat/completions", Body("").Replace("\"decoding_trace\": true", "\"decoding_trace\": \"yes\"", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("decoding_trace", error.GetProperty("error").GetProperty("param").GetString());
    }
}
