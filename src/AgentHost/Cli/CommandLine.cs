using System.Globalization;
using AgentHost.Llama;

namespace AgentHost.Cli;

/// <summary>An option a verb accepts: <c>--name value</c>, a repeatable one, or a flag.</summary>
internal sealed record OptionSpec(string Name, string Help, bool IsFlag = false, bool Repeatable = false, string? ValueName = "VALUE", bool IsPositional = false);

/// <summary>
/// Parses <c>--name value</c>, <c>--name=value</c> and flags against a verb's option list. Every
/// mistake (unknown option, missing or malformed value, repeated single option) is an
/// <see cref="AgentHostException"/> with one clear sentence.
/// </summary>
internal sealed class CommandLine
{
    private readonly string _verb;
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    private CommandLine(string verb) => _verb = verb;

    public static CommandLine Parse(string verb, IReadOnlyList<string> args, IReadOnlyList<OptionSpec> specs)
    {
        var line = new CommandLine(verb);
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if ((!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
                && specs.FirstOrDefault(s => s.IsPositional && !line._values.ContainsKey(s.Name)) is { } positional)
            {
                line._values[positional.Name] = [arg];
                continue;
            }
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
                throw Usage($"unexpected argument '{arg}' for '{verb}'; options start with -- (see '{verb} --help').");

            var name = arg[2..];
            string? inlineValue = null;
            var equals = name.IndexOf('=', StringComparison.Ordinal);
            if (equals >= 0)
            {
                inlineValue = name[(equals + 1)..];
                name = name[..equals];
            }

            var spec = specs.FirstOrDefault(s => s.Name == name)
                ?? throw Usage($"unknown option '--{name}' for '{verb}' (see '{verb} --help').");
            if (spec.IsFlag)
            {
                if (inlineValue is not null)
                    throw Usage($"option '--{name}' takes no value.");
                line._flags.Add(name);
                continue;
            }

            var value = inlineValue ?? (i + 1 < args.Count ? args[++i] : throw Usage($"option '--{name}' needs a value."));
            if (!line._values.TryGetValue(name, out var list))
                line._values[name] = list = [];
            else if (!spec.Repeatable)
                throw Usage($"option '--{name}' is given more than once.");
            list.Add(value);
        }
        return line;
    }

    public bool Has(string name) => _flags.Contains(name) || _values.ContainsKey(name);

    public string? GetString(string name) => _values.TryGetValue(name, out var list) ? list[0] : null;

    public IReadOnlyList<string> GetAll(string name) => _values.TryGetValue(name, out var list) ? list : [];

    public string RequireString(string name)
        => GetString(name) ?? throw Usage($"'{_verb}' needs --{name}.");

    /// <summary>The value of a positional argument (see <see cref="OptionSpec.IsPositional"/>), which must be given.</summary>
    public string RequirePositional(OptionSpec spec)
        => GetString(spec.Name) ?? throw Usage($"'{_verb}' needs {spec.ValueName} (see '{_verb} --help').");

    public int? GetInt(string name, int min, int max = int.MaxValue)
    {
        var text = GetString(name);
        if (text is null)
            return null;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            throw Usage($"--{name} expects a whole number, not '{text}'.");
        if (value < min || value > max)
            throw Usage(max == int.MaxValue ? $"--{name} must be at least {min}, not {value}." : $"--{name} must be between {min} and {max}, not {value}.");
        return value;
    }

    public ulong? GetULong(string name)
    {
        var text = GetString(name);
        if (text is null)
            return null;
        return ulong.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw Usage($"--{name} expects a non-negative whole number, not '{text}'.");
    }

    public float? GetFloat(string name)
    {
        var text = GetString(name);
        if (text is null)
            return null;
        return float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && float.IsFinite(value)
            ? value
            : throw Usage($"--{name} expects a number, not '{text}'.");
    }

    public static AgentHostException Usage(string message) => new(ErrorKind.InvalidArgument, message);
}
