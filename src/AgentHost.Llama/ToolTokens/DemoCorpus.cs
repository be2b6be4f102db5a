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

    private static readonly string[] _places = ["garden", "house", "park", "box", "room", "kitchen", "yard", "shop"];

    // The training templates are composed from parts, so a head sees each situation in many shapes: a setup (the first
    // number), an event (the second) or for multiply one sentence with both, a result clause built from a connective, a
    // subject, a counting verb and a tail, inside a frame that may add a lead or a number that is no call.
    // Placeholders: {name} {he} {him} {his} {friend} {thing} {place} {a} {b} {d} (a number that is no call) {call}.
    private static readonly string[] _setups =
    [
        "{name} had {a} {thing}", "{name} found {a} {thing}", "{name} picked {a} {thing}", "{name} got {a} {thing} for {his} birthday",
        "{name} bought {a} {thing}", "{name} made {a} {thing}", "{name} collected {a} {thing}", "there were {a} {thing} in the {place}",
        "{name} saw {a} {thing} in the {place}", "dad gave {name} {a} {thing}", "{name} kept {a} {thing} in a box",
        "{name} put {a} {thing} on the table", "{a} {thing} were in the {place}", "{name} had a bag with {a} {thing}",
    ];

    private static readonly string[] _addEvents =
    [
        "{he} found {b} more", "{friend} gave {him} {b} more", "{he} got {b} more", "{he} picked {b} more", "{b} more {thing} came",
        "{he} bought {b} more", "dad brought {b} more", "{friend} brought {b} {thing} too", "{he} made {b} more", "{he} won {b} more {thing}",
        "{friend} added {b} {thing}",
    ];

    private static readonly string[] _subtractEvents =
    [
        "{he} lost {b}", "{he} gave {b} to {friend}", "{b} of them broke", "the dog took {b}", "{he} ate {b}", "{b} {thing} rolled away",
        "{friend} took {b} of them", "{he} sold {b}", "{b} got lost", "{he} dropped {b} of them", "the wind blew {b} away",
    ];

    private static readonly string[] _multiplySetups =
    [
        "{name} had {a} bags with {b} {thing} in each bag", "there were {a} boxes and each box had {b} {thing}",
        "{name} saw {a} trees with {b} {thing} on each tree", "{a} kids came and each kid had {b} {thing}",
        "{name} filled {a} jars with {b} {thing} each", "{name} made {a} piles of {b} {thing}", "each of the {a} cats had {b} {thing}",
        "{name} needed {b} {thing} for each of {a} friends", "{name} had {a} shelves and every shelf held {b} {thing}",
        "{a} baskets held {b} {thing} each", "{name} found {b} {thing} on each of {a} days",
    ];

    private static readonly string[] _connectives = ["now ", "so ", "then ", "in the end ", "after that ", "at last ", ""];
    private static readonly string[] _subjects = ["{he}", "{name}", "the {place}", "they"];
    private static readonly string[] _countVerbs = ["had", "got", "saw", "made", "counted", "kept", "held", "found", "owned", "collected", "picked", "ended up with", "was left with"];
    private static readonly string[] _tails = ["", " in all", " in total", " now", " altogether", " left", " for the party"];
    private static readonly string[] _leads = ["on day {d}", "when {he} was {d}", "at {d} o'clock", "after {d} days", "one day"];

    // {S} setup, {E} event, {M} multiply setup, {R} result clause, {L} lead.
    private static readonly string[] _frames =
    [
        "{S}. Then {E}. {R}.", "{S}, and then {E}. {R}.", "{S}. {E}, so {R}.", "{S} and {E}, so {R}.", "{L}, {S}. {E}. {R}.",
        "{S}. After a while {E}. {R}.", "{S}. {E}. {R} for {his} {d} friends.", "{S}. {E}. {R}, and {he} was {d} years old.", "{S}. {E}. {R}!",
    ];

    private static readonly string[] _multiplyFrames = ["{M}. {R}.", "{M}, so {R}.", "{L}, {M}. {R}.", "{M}. {R} for {his} {d} friends.", "{M}. {R}, and {he} was happy."];

    private static readonly string[] _plain =
    [
        "{name} had {a} {thing} and {friend} had {b} {thing}.", "on day {d}, {name} saw {a} {thing} in the {place}.",
        "{name} was {d} years old and had {a} {thing}.", "{name} counted to {d} and then played with {friend}.",
        "{a} birds sat in the tree and {b} dogs ran in the {place}.", "{name} gave {friend} {a} {thing} and a hug.",
        "{name} had {a} {thing}. Then {he} found {b} more and smiled.", "{name} had {a} {thing} and {friend} had {b}. Later they saw {d} birds.",
        "{name} made {a} {thing}, and {friend} counted {b} stars.", "{name} lost {a} {thing} in the {place}, but {he} found them again.",
        "{friend} ate {a} {thing} and drank {b} cups of milk.", "{name} had {a} bags and {friend} had {b} boxes.",
        "at {d} o'clock {name} went to the {place} with {a} {thing}.", "{name} read {a} books about {thing} with {friend}.",
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

    /// <summary>Training lines <c>toolkens corpus</c> writes unless told otherwise.</summary>
    public const int DefaultTrainLines = 1200;

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
    /// Writes <c>train.txt</c> (by default 1,200 lines), <c>heldout.txt</c> (100 other lines of the training templates) and
    /// <c>unseen.txt</c> (as many lines of templates never used for training).
    /// </summary>
    /// <exception cref="AgentHostException">More than <see cref="MaxLines"/> lines in all (<see cref="ErrorKind.InvalidArgument"/>).</exception>
    public static (string Train, string HeldOut, string Unseen) Write(string directory, int trainLines = DefaultTrainLines, int heldOutLines = 100, int seed = 1)
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
    /// A second unseen set, written by hand independently of this generator (other sentence shapes, verbs, names and
    /// things) and never trained on: 60 lines with a call and 15 without, in the corpus format. <c>toolkens corpus</c>
    /// writes it as <c>phrasings.txt</c>.
    /// </summary>
    public static string Phrasings { get; } = ReadPhrasings();

    private static string ReadPhrasings()
    {
        using var stream = typeof(DemoCorpus).Assembly.GetManifestResourceStream("AgentHost.Llama.ToolTokens.phrasings.txt")
            ?? throw new InvalidOperationException("The phrasings resource is missing from the assembly.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
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

    // A line of the training templates: about one in five without a call.
    private static string Line(Random random)
    {
        var (person, friend) = People(random);
        var thing = _things[random.Next(_things.Length)];
        var place = _places[random.Next(_places.Length)];
        var d = random.Next(2, 10);
        var kind = random.Next(10);
        var lead = Pick(random, _leads);
        string template, call = "";
        int a, b;
        if (kind < 2)
        {
            (template, a, b) = (Pick(random, _plain), random.Next(2, 10), random.Next(2, 10));
        }
        else
        {
            string tool;
            if (kind < 5)
                (tool, a, b) = ("add", random.Next(1, 10), random.Next(1, 10));
            else if (kind < 8)
                (tool, a, b) = ("subtract", random.Next(5, 10), random.Next(1, 5));
            else
                (tool, a, b) = ("multiply", random.Next(2, 6), random.Next(2, 6));
            var result = tool switch { "add" => a + b, "subtract" => a - b, _ => a * b };
            call = $"<{tool}>({Number(a)}, {Number(b)})={Number(result)}";
            var clause = random.Next(10) == 0
                ? "there were {call} {thing}" + Pick(random, _tails)
                : Pick(random, _connectives) + Pick(random, _subjects) + " " + Pick(random, _countVerbs) + " {call} {thing}" + Pick(random, _tails);
            template = tool == "multiply"
                ? Pick(random, _multiplyFrames).Replace("{M}", Pick(random, _multiplySetups), StringComparison.Ordinal)
                : Pick(random, _frames).Replace("{S}", Pick(random, _setups), StringComparison.Ordinal)
                    .Replace("{E}", Pick(random, tool == "add" ? _addEvents : _subtractEvents), StringComparison.Ordinal);
            template = template.Replace("{R}", clause, StringComparison.Ordinal);
        }
        return CapitalizeSentences(Fill(template.Replace("{L}", lead, StringComparison.Ordinal), person, friend, thing, place, a, b, d, call));
    }

    // A person and a friend who is someone else.
    private static ((string Name, string He, string Him) Person, (string Name, string He, string Him) Friend) People(Random random)
    {
        var person = _people[random.Next(_people.Length)];
        var friend = _people[random.Next(_people.Length)];
        while (friend.Name == person.Name)
            friend = _people[random.Next(_people.Length)];
        return (person, friend);
    }

    // The template with its placeholders filled in.
    private static string Fill(string template, (string Name, string He, string Him) person, (string Name, string He, string Him) friend,
        string thing, string place, int a, int b, int d, string call)
        => new StringBuilder(template)
            .Replace("{call}", call).Replace("{name}", person.Name).Replace("{friend}", friend.Name).Replace("{thing}", thing).Replace("{place}", place)
            .Replace("{He}", char.ToUpperInvariant(person.He[0]) + person.He[1..]).Replace("{he}", person.He).Replace("{him}", person.Him)
            .Replace("{his}", person.Him == "him" ? "his" : "her")
            .Replace("{a}", Number(a)).Replace("{b}", Number(b)).Replace("{d}", Number(d))
            .ToString();

    private static string Pick(Random random, string[] items) => items[random.Next(items.Length)];

    // Upper-case the first letter of the line and of every sentence in it.
    private static string CapitalizeSentences(string line)
    {
        var chars = line.ToCharArray();
        var start = true;
        for (var i = 0; i < chars.Length; i++)
        {
            if (start && char.IsLetter(chars[i]))
                chars[i] = char.ToUpperInvariant(chars[i]);
            if (char.IsLetterOrDigit(chars[i]) || chars[i] == '<')
                start = false;
            else if (chars[i] is '.' or '!' or '?')
                start = true;
        }
        return new string(chars);
    }

    // A line of the unseen templates, with the training lines' people, things and number ranges.
    private static string UnseenLine(Random random)
    {
        var (person, friend) = People(random);
        var kind = random.Next(10);
        var (templates, a, b, call) = kind switch
        {
            < 2 => (_unseenPlain, random.Next(2, 10), random.Next(2, 10), ""),
            < 5 => Call(_unseenAdd, "add", random.Next(1, 10), random.Next(1, 10), static (x, y) => x + y),
            < 8 => Call(_unseenSubtract, "subtract", random.Next(5, 10), random.Next(1, 5), static (x, y) => x - y),
            _ => Call(_unseenMultiply, "multiply", random.Next(2, 6), random.Next(2, 6), static (x, y) => x * y),
        };
        // Drawn in this order so that unseen.txt stays the same set of lines.
        var template = Pick(random, templates);
        var thing = Pick(random, _things);
        var d = random.Next(2, 10);
        return Fill(template, person, friend, thing, "", a, b, d, call);

        static (string[], int, int, string) Call(string[] templates, string tool, int x, int y, Func<int, int, int> apply)
            => (templates, x, y, $"<{tool}>({x}, {y})={apply(x, y)}");
    }

    private static string Number(int value) => value.ToString(CultureInfo.InvariantCulture);
}
