using AgentHost.Llama.ToolTokens;

namespace AgentHost.Llama.Tests.ToolTokens;

/// <summary>The annotated corpus format and the demo corpus.</summary>
public sealed class ToolTokensCorpusTests
{
    [Fact]
    public void A_call_is_replaced_by_its_result_and_its_position_is_kept()
    {
        var example = AnnotatedCorpus.ParseLine("Lily had 3 apples and found 4 more, so she had <add>(3, 4)=7 apples and <multiply>(2,3)=6.", 5)!;

        Assert.Equal("Lily had 3 apples and found 4 more, so she had 7 apples and 6.", example.Text);
        Assert.Equal(5, example.Line);
        Assert.Equal(2, example.Calls.Count);
        Assert.Equal(new AnnotatedCall("add", "3, 4", "7", 47), example.Calls[0]);
        Assert.Equal("7", example.Text.Substring(example.Calls[0].Start, 1));
        Assert.Equal("6", example.Text.Substring(example.Calls[1].Start, 1));
        Assert.Equal("6", example.Calls[1].Result);
    }

    [Fact]
    public void Blank_and_comment_lines_are_skipped_and_a_malformed_call_is_a_clear_error()
    {
        Assert.Null(AnnotatedCorpus.ParseLine("   ", 1));
        Assert.Null(AnnotatedCorpus.ParseLine("# comment <add>(1, 2)=3", 2));
        Assert.Empty(AnnotatedCorpus.ParseLine("No calls here.", 3)!.Calls);
        var error = Assert.Throws<AgentHostException>(() => AnnotatedCorpus.ParseLine("she had <add>(3, 4) apples", 9));
        Assert.Contains("line 9", error.Message);
    }

    [Fact]
    public void The_demo_corpus_is_deterministic_parses_and_uses_every_tool()
    {
        var lines = DemoCorpus.Generate(200, seed: 4);
        Assert.Equal(lines, DemoCorpus.Generate(200, seed: 4));
        Assert.NotEqual(lines, DemoCorpus.Generate(200, seed: 5));

        var examples = AnnotatedCorpus.Parse(string.Join('\n', lines));
        Assert.Equal(200, examples.Count);
        var calls = examples.SelectMany(e => e.Calls).ToList();
        Assert.InRange(calls.Count, 120, 190); // about one line in five has no call
        foreach (var tool in DemoCorpus.ToolNames)
            Assert.Contains(calls, c => c.Tool == tool);
        foreach (var call in calls)
        {
            var numbers = call.Arguments.Split(", ").Select(int.Parse).ToArray();
            var expected = call.Tool switch { "add" => numbers[0] + numbers[1], "subtract" => numbers[0] - numbers[1], _ => numbers[0] * numbers[1] };
            Assert.Equal(expected.ToString(System.Globalization.CultureInfo.InvariantCulture), call.Result);
        }
    }

    [Fact]
    public void Unseen_templates_never_appear_in_training_and_are_as_well_formed()
    {
        var seen = DemoCorpus.Generate(2000, seed: 3);
        var unseen = DemoCorpus.Generate(300, seed: 3, DemoTemplates.Unseen);
        Assert.Equal(unseen, DemoCorpus.Generate(300, seed: 3, DemoTemplates.Unseen));

        // A line's skeleton: the words that are no name, thing, pronoun or number. No unseen skeleton is a seen one.
        var seenSkeletons = seen.Select(Skeleton).ToHashSet();
        Assert.True(seenSkeletons.Count >= 1000, $"{seenSkeletons.Count} training skeletons in 2,000 lines");   // composed from parts: varied
        Assert.All(unseen, line => Assert.DoesNotContain(Skeleton(line), seenSkeletons));

        var calls = AnnotatedCorpus.Parse(string.Join('\n', unseen)).SelectMany(e => e.Calls).ToList();
        foreach (var tool in DemoCorpus.ToolNames)
            Assert.Contains(calls, c => c.Tool == tool);
        Assert.InRange(calls.Count, 180, 280);
        // Other call positions and numbers that are no call: an operand first in the sentence, an age, a day.
        Assert.Contains(unseen, line => char.IsAsciiDigit(line[0]));
        Assert.Contains(unseen, line => line.StartsWith("When ", StringComparison.Ordinal));
        Assert.Contains(unseen, line => line.StartsWith("On day ", StringComparison.Ordinal) && line.Contains('<', StringComparison.Ordinal));
    }

    private static string Skeleton(string line)
    {
        string[] variable = ["Lily", "Tom", "Ben", "Mia", "Sue", "Max", "Anna", "Tim", "Sam", "Lucy", "Jack", "Kim", "she", "he", "her", "him", "his", "She", "He",
            "apples", "toys", "cookies", "balls", "flowers", "rocks", "cars", "books", "candies", "shells", "stars", "blocks"];
        var words = System.Text.RegularExpressions.Regex.Replace(line, @"<\w+>\([^)]*\)=\d+|\d+", "#").Split(' ');
        return string.Join(' ', words.Select(w => variable.Contains(w.TrimEnd('.', ',', '!')) ? "_" : w));
    }
}
