using System.Text;
using System.Text.Json;
using AgentHost.Extensions.AI.Chat;
using Microsoft.Extensions.AI;

namespace AgentHost.SemanticKernel.Tests.Chat;

/// <summary>Reasoning blocks (Qwen3, DeepSeek-R1) split off the answer, whole and streamed, before tool calls are read.</summary>
public sealed class ToolCallReasoningTests
{
    /// <summary>(reply, starts inside the block, expected reasoning, expected text).</summary>
    public static TheoryData<string, bool, string, string> Replies => new()
    {
        { "<think>\nThe user wants 2+2.\n</think>\n\nIt is 4.", false, "The user wants 2+2.", "It is 4." },
        { "  <think>a < b, so </thin k> is not the end</think>Done", false, "a < b, so </thin k> is not the end", "Done" },
        { "The user wants 2+2.\n</think>\n\nIt is 4.", true, "The user wants 2+2.", "It is 4." },
        { "<think>\nRepeated opener.\n</think>\n\nIt is 4.", true, "Repeated opener.", "It is 4." },
        { "<think>\n\n</think>\n\nHi there.", false, "", "Hi there." },
        { "<think>Still thinking when the tokens ran out", false, "Still thinking when the tokens ran out", "" },
        { "Thinking with no closing tag", true, "Thinking with no closing tag", "" },
        { "No reasoning here. <think>this</think> stays", false, "", "No reasoning here. <think>this</think> stays" },
        { "  Plain answer  ", false, "", "  Plain answer  " },
        { "", false, "", "" },
        { "<thinking>not our tag</thinking>", false, "", "<thinking>not our tag</thinking>" },
        { "<think>x</think>   ", false, "x", "" },
    };

    private static (string Reasoning, string Text, int Other) Collect(IEnumerable<AIContent> contents)
    {
        var reasoning = new StringBuilder();
        var text = new StringBuilder();
        var other = 0;
        foreach (var content in contents)
        {
            switch (content)
            {
                case TextReasoningContent r:
                    reasoning.Append(r.Text);
                    break;
                case TextContent t:
                    text.Append(t.Text);
                    break;
                default:
                    other++;
                    break;
            }
        }
        return (reasoning.ToString(), text.ToString(), other);
    }

    private static IEnumerable<string[]> Splits(string reply)
    {
        for (var i = 0; i <= reply.Length; i++)
            yield return [reply[..i], reply[i..]];
        yield return [.. reply.Select(c => c.ToString())];
    }

    [Theory]
    [MemberData(nameof(Replies))]
    public void Reasoning_is_split_off_whole_and_streamed_at_every_split(string reply, bool startsInside, string reasoning, string text)
    {
        var whole = ReasoningTags.Think.CreateSplitter(startsInside).ParseAll(reply);
        Assert.Equal((reasoning, text, 0), Collect(whole));
        Assert.True(whole.Count(c => c is TextReasoningContent) <= 1);
        foreach (var pieces in Splits(reply))
        {
            var splitter = ReasoningTags.Think.CreateSplitter(startsInside);
            var contents = new List<AIContent>();
            foreach (var piece in pieces)
                contents.AddRange(splitter.Push(piece));
            contents.AddRange(splitter.Complete());
            Assert.Equal((reasoning, text, 0), Collect(contents));
            // Never mixed: no reasoning after the first answer text.
            var firstText = contents.FindIndex(c => c is TextContent);
            Assert.True(firstText < 0 || !contents.Skip(firstText).Any(c => c is TextReasoningContent));
        }
    }

    [Fact]
    public void A_prompt_that_opened_the_block_means_the_reply_starts_inside_it()
    {
        Assert.True(ReasoningTags.Think.IsOpenAtEndOf("<｜User｜>Hi<｜Assistant｜><think>\n"));
        Assert.False(ReasoningTags.Think.IsOpenAtEndOf("<|im_start|>assistant\n<think>\n\n</think>\n\n")); // Qwen3 with thinking off
        Assert.False(ReasoningTags.Think.IsOpenAtEndOf("<|im_start|>assistant\n"));
    }

    [Fact]
    public void Text_after_the_answer_starts_passes_straight_through()
    {
        var splitter = ReasoningTags.Think.CreateSplitter();
        Assert.Empty(splitter.Push("<thi"));
        Assert.Empty(splitter.Push("nk>"));
        Assert.Equal("ab", Assert.IsType<TextReasoningContent>(Assert.Single(splitter.Push("ab  "))).Text);
        Assert.Empty(splitter.Push("</th"));
        Assert.Empty(splitter.Push("ink>\n"));
        Assert.Equal("Hello", Assert.IsType<TextContent>(Assert.Single(splitter.Push("Hello"))).Text);
        Assert.Equal(" <think>", Assert.IsType<TextContent>(Assert.Single(splitter.Push(" <think>"))).Text);
        Assert.Empty(splitter.Complete());
        Assert.Throws<InvalidOperationException>(() => splitter.Push("x"));
    }

    public static TheoryData<string, string, string, string[]> ReasoningAndCalls => new()
    {
        // Qwen3: reasoning, then a Hermes call.
        { "hermes", "<think>\nI need the weather tool.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", "I need the weather tool.", [] },
        // A <tool_call> inside the reasoning is thought, not a call.
        { "hermes", "<think>Maybe <tool_call>{\"name\": \"get_weather\", \"arguments\": {}}</tool_call>?</think>Plain answer.", "Maybe <tool_call>{\"name\": \"get_weather\", \"arguments\": {}}</tool_call>?", ["Plain answer."] },
        // DeepSeek-R1: the template opened <think>, the reply closes it and calls.
        { "deepseek-r1", "Paris weather needed.\n</think>\n\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>", "Paris weather needed.", [] },
    };

    [Theory]
    [MemberData(nameof(ReasoningAndCalls))]
    public void The_chat_client_reads_reasoning_first_and_tool_calls_in_the_answer_only(string format, string reply, string reasoning, string[] text)
    {
        var toolFormat = ToolCallFormat.Find(format)!;
        var prompt = format == "deepseek-r1" ? "<｜User｜>Weather?<｜Assistant｜><think>\n" : "<|im_start|>assistant\n";
        var whole = ReplyReader.For(toolFormat, prompt, ["get_weather"])!.ParseAll(reply);
        Assert.IsType<TextReasoningContent>(whole[0]);
        Assert.Equal(reasoning, ((TextReasoningContent)whole[0]).Text);
        var expectedCalls = text.Length == 0 ? 1 : 0;
        Assert.Equal(expectedCalls, whole.OfType<FunctionCallContent>().Count());
        Assert.Equal(string.Concat(text), string.Concat(whole.OfType<TextContent>().Select(t => t.Text)));

        for (var i = 0; i <= reply.Length; i++)
        {
            var reader = ReplyReader.For(toolFormat, prompt, ["get_weather"])!;
            var contents = new List<AIContent>(reader.Push(reply[..i]));
            contents.AddRange(reader.Push(reply[i..]));
            contents.AddRange(reader.Complete());
            Assert.Equal(reasoning, string.Concat(contents.OfType<TextReasoningContent>().Select(r => r.Text)));
            Assert.Equal(string.Concat(text), string.Concat(contents.OfType<TextContent>().Select(t => t.Text)));
            var calls = contents.OfType<FunctionCallContent>().ToList();
            Assert.Equal(expectedCalls, calls.Count);
            if (calls.Count == 1)
                Assert.Equal("{\"city\":\"Paris\"}", JsonSerializer.Serialize(calls[0].Arguments));
        }
    }

    [Fact]
    public void Formats_without_reasoning_tags_leave_think_tags_in_the_text_and_need_no_reader_without_tools()
    {
        Assert.Null(ReplyReader.For(ToolCallFormat.Generic, "Once upon a time", null));
        Assert.NotNull(ReplyReader.For(ToolCallFormat.Hermes, "<|im_start|>assistant\n", null));
        var contents = ReplyReader.For(ToolCallFormat.Generic, "", ["f"])!.ParseAll("<think>x</think>y");
        Assert.Equal("<think>x</think>y", Assert.IsType<TextContent>(Assert.Single(contents)).Text);
    }
}
