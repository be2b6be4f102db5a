using System.Net;
using System.Text;
using System.Text.Json;

namespace AgentHost.Tests;

/// <summary>
/// Thinking models' reasoning travels as llama-server writes it: <c>message.reasoning_content</c> and
/// <c>delta.reasoning_content</c>, never inside <c>content</c>. stories260K stands in for a thinking model under a chatml
/// override whose generation prompt opens <c>&lt;think&gt;</c> (as DeepSeek-R1's template does): it never closes the
/// block, so its whole reply is reasoning.
/// </summary>
public sealed class ServerReasoningTests
{
    [Fact]
    public async Task ReasoningIsReasoningContentInTheMessageAndInStreamedDeltas()
    {
        var formats = Directory.CreateTempSubdirectory("agenthost-reasoning-formats");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(formats.FullName, "chatml.scriban"),
                "{{~ for m in messages; m.content; end; if add_generation_prompt; \"\\n<think>\\n\"; end ~}}");
            await using var server = await TestServer.StartAsync(catalog: options =>
            {
                options.ChatFormatsDir = formats.FullName;
                options.Models["stories260k"].ChatFormat = "chatml";
            });
            const string request = """{"model": "stories260k", "messages": [{"role": "user", "content": "Once upon a time"}], "max_tokens": 16""";

            var (status, body, _) = await server.PostAsync("/v1/chat/completions", request + "}");
            Assert.Equal(HttpStatusCode.OK, status);
            var message = body.GetProperty("choices")[0].GetProperty("message");
            var reasoning = message.GetProperty("reasoning_content").GetString()!;
            Assert.NotEmpty(reasoning);
            Assert.Equal("", message.GetProperty("content").GetString());

            using var response = await server.Http.PostAsync("/v1/chat/completions", new StringContent(request + ", \"stream\": true}", Encoding.UTF8, "application/json"));
            var streamedReasoning = new StringBuilder();
            var streamedContent = new StringBuilder();
            foreach (var line in (await response.Content.ReadAsStringAsync()).Split('\n'))
            {
                if (!line.StartsWith("data: {", StringComparison.Ordinal))
                    continue;
                using var chunk = JsonDocument.Parse(line["data: ".Length..]);
                foreach (var choice in chunk.RootElement.GetProperty("choices").EnumerateArray())
                {
                    var delta = choice.GetProperty("delta");
                    if (delta.TryGetProperty("reasoning_content", out var r))
                        streamedReasoning.Append(r.GetString());
                    if (delta.TryGetProperty("content", out var c))
                        streamedContent.Append(c.GetString());
                }
            }
            Assert.Equal(reasoning, streamedReasoning.ToString());
            Assert.Equal("", streamedContent.ToString());
        }
        finally
        {
            formats.Delete(recursive: true);
        }
    }
}
