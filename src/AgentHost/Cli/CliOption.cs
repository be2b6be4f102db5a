using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Numerics;
using AgentHost.Llama;

namespace AgentHost.Cli;

/// <summary>
/// Makes System.CommandLine options that parse their values the CLI's way: invariant culture, ranges checked,
/// and every mistake one sentence naming the option (the parse error <see cref="CliApp"/> prints). A default is
/// given once, as a value: help prints it from there.
/// </summary>
internal static class CliOption
{
    /// <summary>A text option; <paramref name="completions"/>, if any, are offered by shell completion.</summary>
    public static Option<string?> Text(string name, string description, string valueName, params string[] completions)
    {
        var option = new Option<string?>(name) { Description = description, HelpName = valueName };
        if (completions.Length > 0)
            option.CompletionSources.Add(completions);
        return option;
    }

    /// <summary>A text option with a default value.</summary>
    public static Option<string> Text(string name, string description, string valueName, string defaultValue, params string[] completions)
    {
        var option = new Option<string>(name) { Description = description, HelpName = valueName, DefaultValueFactory = _ => defaultValue };
        if (completions.Length > 0)
            option.CompletionSources.Add(completions);
        return option;
    }

    /// <summary>An option that may be given several times (e.g. <c>--stop a --stop b</c>).</summary>
    public static Option<string[]> Repeated(string name, string description, string valueName)
        => new(name) { Description = description + " (repeatable)", HelpName = valueName, Arity = ArgumentArity.OneOrMore, DefaultValueFactory = _ => [] };

    /// <summary>An on/off flag.</summary>
    public static Option<bool> Flag(string name, string description)
        => new(name) { Description = description, Arity = ArgumentArity.Zero };

    /// <summary>A whole number in [<paramref name="min"/>, <paramref name="max"/>] with a default.</summary>
    public static Option<int> Int(string name, string description, string valueName, int defaultValue, int min, int max = int.MaxValue)
        => new(name) { Description = description, HelpName = valueName, DefaultValueFactory = _ => defaultValue, CustomParser = r => ParseInt(r, min, max) ?? defaultValue };

    /// <summary>A whole number in [<paramref name="min"/>, <paramref name="max"/>], null when not given.</summary>
    public static Option<int?> OptionalInt(string name, string description, string valueName, int min, int max = int.MaxValue)
        => new(name) { Description = description, HelpName = valueName, CustomParser = r => ParseInt(r, min, max) };

    /// <summary>A finite number with a default.</summary>
    public static Option<float> Float(string name, string description, string valueName, float defaultValue) => Number(name, description, valueName, defaultValue);

    /// <summary>A finite double-precision number with a default.</summary>
    public static Option<double> Double(string name, string description, string valueName, double defaultValue) => Number(name, description, valueName, defaultValue);

    /// <summary>A finite number, null when not given.</summary>
    public static Option<float?> OptionalFloat(string name, string description, string valueName)
        => new(name) { Description = description, HelpName = valueName, CustomParser = ParseNumber<float> };

    /// <summary>A non-negative whole number (a seed), null when not given.</summary>
    public static Option<ulong?> OptionalULong(string name, string description, string valueName)
        => new(name)
        {
            Description = description,
            HelpName = valueName,
            CustomParser = r => ulong.TryParse(Single(r), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value
                : Fail<ulong?>(r, $"{Name(r)} expects a non-negative whole number, not '{Single(r)}'."),
        };

    /// <summary>Whether the user gave <paramref name="option"/> (a default does not count).</summary>
    public static bool Has(this ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    /// <summary>The value of <paramref name="option"/> if the user gave it, else null (its default does not count).</summary>
    public static T? Given<T>(this ParseResult parse, Option<T> option) where T : struct
        => parse.Has(option) ? parse.GetValue(option) : null;

    /// <summary>The value of a text option that the verb needs.</summary>
    public static string Require(this ParseResult parse, Option<string?> option)
        => parse.GetValue(option) ?? throw Usage($"'{Verb(parse)}' needs {option.Name}.");

    /// <summary>The value of a positional argument that the verb needs.</summary>
    public static string Require(this ParseResult parse, Argument<string?> argument)
        => parse.GetValue(argument) ?? throw Usage($"'{Verb(parse)}' needs {argument.HelpName} (see '{Verb(parse)} --help').");

    /// <summary>The verb's words, e.g. <c>analyze rollouts</c>.</summary>
    public static string Verb(ParseResult parse)
    {
        var words = new List<string>();
        for (SymbolResult? result = parse.CommandResult; result is CommandResult { Parent: not null } command; result = result.Parent)
            words.Insert(0, command.Command.Name);
        return string.Join(' ', words);
    }

    /// <summary>A user mistake on the command line (exit code 2).</summary>
    public static AgentHostException Usage(string message) => new(ErrorKind.InvalidArgument, message);

    private static int? ParseInt(ArgumentResult result, int min, int max)
    {
        var text = Single(result);
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            return Fail<int?>(result, $"{Name(result)} expects a whole number, not '{text}'.");
        if (value < min || value > max)
            return Fail<int?>(result, max == int.MaxValue ? $"{Name(result)} must be at least {min}, not {value}." : $"{Name(result)} must be between {min} and {max}, not {value}.");
        return value;
    }

    private static Option<T> Number<T>(string name, string description, string valueName, T defaultValue) where T : struct, IFloatingPointIeee754<T>
        => new(name) { Description = description, HelpName = valueName, DefaultValueFactory = _ => defaultValue, CustomParser = r => ParseNumber<T>(r) ?? defaultValue };

    private static T? ParseNumber<T>(ArgumentResult result) where T : struct, IFloatingPointIeee754<T>
    {
        var text = Single(result);
        return T.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && T.IsFinite(value)
            ? value
            : Fail<T?>(result, $"{Name(result)} expects a number, not '{text}'.");
    }

    // System.CommandLine refuses a single-valued option given twice before its parser runs.
    private static string Single(ArgumentResult result) => result.Tokens.Count > 0 ? result.Tokens[0].Value : "";

    private static string Name(ArgumentResult result) => result.Parent is OptionResult option ? option.Option.Name : result.Argument.Name;

    private static T? Fail<T>(ArgumentResult result, string message)
    {
        result.AddError(message);
        return default;
    }
}
