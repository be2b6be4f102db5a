using System.Globalization;
using System.Text;

namespace AgentHost.Llama.ToolTokens;

/// <summary>Which templates a demo corpus line comes from.</summary>
public enum DemoTemplates
{
    /// <summary>The training templates (train.txt and the held-out heldout.txt).</summary>
    Seen,

    /// <summary>Templates never used for training: other sentence shapes, call positions and paraphrases (unseen.txt).</summary>
    Unseen,
}

/// <summary>
/// The demo corpus the project generates itself: short TinyStories-like sentences with arithmetic where
/// a call belongs (<c>... found 4 more, so now she had &lt;add&gt;(3, 4)=7 apples.</c>), for the tools
/// <c>add</c>, <c>subtract</c> and <c>multiply</c>. Deterministic for a seed. A second set of templates
/// (<see cref="DemoTemplates.Unseen"/>: other sentence shapes, the call mid-sentence or before other numbers, numbers
/// that are no call) never appears in training and measures whether a head learnt the situation or the sentences.
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

    // Placeholders: {name} {he} {He} {him} {his} {friend} {thing} {a} {b} {d} (a number that is no call) {call}.
    private static readonly string[] _unseenAdd =
    [
        "{name} saw {a} {thing} in the yard and {b} more by the tree, so {he} saw {call} {thing} in all.",
        "{friend} gave {name} {b} {thing}. {name} already had {a}, so now {he} had {call}.",
        "In the morning {name} made {a} {thing}. At night {he} made {b} more. That was {call} {thing}.",
        "On day {d}, {name} picked {a} {thing} and {friend} picked {b}. Together they had {call} {thing}.",
    ];

    private static readonly string[] _unseenSubtract =
    [
        "{name} counted {a} {thing}. The dog ran off with {b}, and {name} had {call} {thing} left.",
        "Mom gave {name} {a} {thing}. {He} shared {b} with {friend} and kept {call} {thing}.",
        "{a} {thing} sat on the shelf until {b} fell down. Then only {call} {thing} were on the shelf.",
        "{name} baked {a} {thing} and ate {b} of them. {He} still had {call} {thing} for {his} {d} friends.",
    ];

    private static readonly string[] _unseenMultiply =
    [
        "{name} put {b} {thing} on each of the {a} plates, so the plates held {call} {thing}.",
        "There were {a} trees and every tree had {b} {thing}. {name} counted {call} {thing}.",
        "{a} friends came and each one brought {b} {thing}. Now {name} had {call} {thing}.",
        "{name} made {a} rows of {thing} with {b} in each row. That made {call} {thing}.",
    ];

    private static readonly string[] _unseenPlain =
    [
        "{friend} had {a} {thing} and {name} had {b} {thing}. They liked to share.",
        "When {name} was {d}, {he} got {a} {thing} and a big red hat.",
        "On day {d}, {name} and {friend} read {a} books about {thing}.",
    ];

    /// <summary>Most lines of a demo corpus (training and held-out together).</summary>
    public const int MaxLines = 1_000_000;

    /// <summary>Generates <paramref name="count"/> lines from <paramref name="templates"/> (about one in five without a call).</summary>
    public static IReadOnlyList<string> Generate(int count, int seed, DemoTemplates templates = DemoTemplates.Seen)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (!Enum.IsDefined(templates))
            throw new ArgumentOutOfRangeException(nameof(templates), templates, "Unknown template set.");
        var random = new Random(seed);
        var lines = new List<string>(count);
        for (var i = 0; i < count; i++)
            lines.Add(templates == DemoTemplates.Seen ? Line(random) : UnseenLine(random));
        return lines;
    }

    /// <summary>
    /// Writes <c>train.txt</c> (e.g. 400 lines), <c>heldout.txt</c> (100 other lines of the training templates) and
    /// <c>unseen.txt</c> (as many lines of templates never used for training).
    /// </summary>
    /// <exception cref="AgentHostException">More than <see cref="MaxLines"/> lines in all (<see cref="ErrorKind.InvalidArgument"/>).</exception>
    public static (string Train, string HeldOut, string Unseen) Write(string directory, int trainLines = 400, int heldOutLines = 100, int seed = 1)
    {
        if (trainLines < 0 || heldOutLines < 0 || (long)trainLines + 2L * heldOutLines > MaxLines)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"A demo corpus holds 0 to {MaxLines} lines in all, not {trainLines} + 2 x {heldOutLines}.");
        Directory.CreateDirectory(directory);
        var all = Generate(trainLines + heldOutLines, seed);
        var train = Path.Combine(directory, "train.txt");
        var heldOut = Path.Combine(directory, "heldout.txt");
        var unseen = Path.Combine(directory, "unseen.txt");
        File.WriteAllLines(train, all.Take(trainLines));
        File.WriteAllLines(heldOut, all.Skip(trainLines));
        File.WriteAllLines(unseen, Generate(heldOutLines, seed, DemoTemplates.Unseen));
        return (train, heldOut, unseen);
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

    // A line of the unseen templates, with the training lines' people, things and number ranges.
    private static string UnseenLine(Random random)
    {
        var person = _people[random.Next(_people.Length)];
        var friend = _people[random.Next(_people.Length)];
        while (friend.Name == person.Name)
            friend = _people[random.Next(_people.Length)];
        var kind = random.Next(10);
        var (templates, a, b, call) = kind switch
        {
            < 2 => (_unseenPlain, random.Next(2, 10), random.Next(2, 10), ""),
            < 5 => Call(_unseenAdd, "add", random.Next(1, 10), random.Next(1, 10), static (x, y) => x + y),
            < 8 => Call(_unseenSubtract, "subtract", random.Next(5, 10), random.Next(1, 5), static (x, y) => x - y),
            _ => Call(_unseenMultiply, "multiply", random.Next(2, 6), random.Next(2, 6), static (x, y) => x * y),
        };
        var he = person.He;
        var his = person.Him == "him" ? "his" : "her";
        return new StringBuilder(templates[random.Next(templates.Length)])
            .Replace("{name}", person.Name).Replace("{friend}", friend.Name).Replace("{thing}", _things[random.Next(_things.Length)])
            .Replace("{He}", char.ToUpperInvariant(he[0]) + he[1..]).Replace("{he}", he).Replace("{him}", person.Him).Replace("{his}", his)
            .Replace("{a}", Number(a)).Replace("{b}", Number(b)).Replace("{d}", Number(random.Next(2, 10))).Replace("{call}", call)
            .ToString();

        static (string[], int, int, string) Call(string[] templates, string tool, int x, int y, Func<int, int, int> apply)
            => (templates, x, y, $"<{tool}>({x}, {y})={apply(x, y)}");
    }

    private static string Number(int value) => value.ToString(CultureInfo.InvariantCulture);
}
