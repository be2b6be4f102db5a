using System.Globalization;

namespace AgentHost.Llama.ToolTokens;

/// <summary>
/// The demo corpus the project generates itself: short TinyStories-like sentences with arithmetic where
/// a call belongs (<c>... found 4 more, so now she had &lt;add&gt;(3, 4)=7 apples.</c>), for the tools
/// <c>add</c>, <c>subtract</c> and <c>multiply</c>. Deterministic for a seed.
/// </summary>
public static class DemoCorpus
{
    /// <summary>The tools the demo corpus calls.</summary>
    public static IReadOnlyList<string> ToolNames { get; } = ["add", "subtract", "multiply"];

    private static readonly (string Name, string He, string Him)[] _people =
    [
        ("Lily", "she", "her"), ("Tom", "he", "him"), ("Ben", "he", "him"), ("Mia", "she", "her"),
        ("Sue", "she", "her"), ("Max", "he", "him"), ("Anna", "she", "her"), ("Tim", "he", "him"),
    ];

    private static readonly string[] _things = ["apples", "toys", "cookies", "balls", "flowers", "rocks", "cars", "books"];

    private static readonly string[] _plain =
    [
        "{0} had {1} {3} in a big box. {4} liked to play with them every day.",
        "{0} saw {1} birds in the tree. {4} was very happy and smiled.",
        "{0} and {5} played with {1} {3} in the park. They had a lot of fun.",
        "{0} found {1} {3} under the bed. {4} showed them to mom.",
    ];

    /// <summary>Most lines of a demo corpus (training and held-out together).</summary>
    public const int MaxLines = 1_000_000;

    /// <summary>Generates <paramref name="count"/> lines (about one in five without a call).</summary>
    public static IReadOnlyList<string> Generate(int count, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var random = new Random(seed);
        var lines = new List<string>(count);
        for (var i = 0; i < count; i++)
            lines.Add(Line(random));
        return lines;
    }

    /// <summary>Writes a training and a held-out file (e.g. <c>train.txt</c> 400 lines, <c>heldout.txt</c> 100 lines).</summary>
    /// <exception cref="AgentHostException">More than <see cref="MaxLines"/> lines in all (<see cref="ErrorKind.InvalidArgument"/>).</exception>
    public static (string Train, string HeldOut) Write(string directory, int trainLines = 400, int heldOutLines = 100, int seed = 1)
    {
        if (trainLines < 0 || heldOutLines < 0 || (long)trainLines + heldOutLines > MaxLines)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"A demo corpus holds 0 to {MaxLines} lines in all, not {trainLines} + {heldOutLines}.");
        Directory.CreateDirectory(directory);
        var all = Generate(trainLines + heldOutLines, seed);
        var train = Path.Combine(directory, "train.txt");
        var heldOut = Path.Combine(directory, "heldout.txt");
        File.WriteAllLines(train, all.Take(trainLines));
        File.WriteAllLines(heldOut, all.Skip(trainLines));
        return (train, heldOut);
    }

    /// <summary>
    /// ToolkenGPT-style demonstrations for argument mode of <paramref name="tool"/>: corpus lines of that tool with
    /// the call written as <c>name(a, b)=result</c>, one per line, so that the model sees where the numbers come from.
    /// </summary>
    public static string ArgumentPrompt(string tool, int examples = 4, int seed = 11)
    {
        var random = new Random(seed);
        var lines = new List<string>();
        while (lines.Count < examples)
        {
            var line = Line(random);
            if (line.Contains($"<{tool}>", StringComparison.Ordinal))
                lines.Add(line.Replace($"<{tool}>", tool, StringComparison.Ordinal));
        }
        return string.Join('\n', lines) + '\n';
    }

    private static string Line(Random random)
    {
        var person = _people[random.Next(_people.Length)];
        var friend = _people[random.Next(_people.Length)];
        var thing = _things[random.Next(_things.Length)];
        var he = person.He;
        var he0 = char.ToUpperInvariant(he[0]) + he[1..];
        var kind = random.Next(10);
        if (kind < 2)
        {
            var template = _plain[random.Next(_plain.Length)];
            return string.Format(CultureInfo.InvariantCulture, template, person.Name, random.Next(2, 10), "", thing, he0, friend.Name);
        }
        if (kind < 5)
        {
            int a = random.Next(1, 10), b = random.Next(1, 10);
            var call = $"<add>({a}, {b})={a + b}";
            return random.Next(2) == 0
                ? $"{person.Name} had {a} {thing}. Then {he} found {b} more {thing}. Now {he} had {call} {thing}."
                : $"{person.Name} had {a} {thing} and {friend.Name} gave {person.Him} {b} more, so {he} had {call} {thing}.";
        }
        if (kind < 8)
        {
            int a = random.Next(5, 10), b = random.Next(1, 5);
            var call = $"<subtract>({a}, {b})={a - b}";
            return random.Next(2) == 0
                ? $"{person.Name} had {a} {thing}. Then {he} lost {b} of them. Now {he} had only {call} {thing}."
                : $"{person.Name} had {a} {thing} but gave {b} to {friend.Name}, so {he} had only {call} {thing} left.";
        }
        {
            int a = random.Next(2, 6), b = random.Next(2, 6);
            var call = $"<multiply>({a}, {b})={a * b}";
            return random.Next(2) == 0
                ? $"{person.Name} had {a} bags with {b} {thing} in each bag. In all {he} had {call} {thing}."
                : $"There were {a} boxes and each box had {b} {thing}, so in all there were {call} {thing}.";
        }
    }
}
