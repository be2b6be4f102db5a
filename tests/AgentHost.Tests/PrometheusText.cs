using System.Globalization;
using System.Text;

namespace AgentHost.Tests;

/// <summary>A scrape of <c>/metrics</c> parsed as Prometheus' text format: every sample with its labels, and each metric's type.</summary>
internal sealed class PrometheusText
{
    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    private PrometheusText(IReadOnlyList<Sample> samples, IReadOnlyDictionary<string, string> types)
    {
        Samples = samples;
        Types = types;
    }

    public IReadOnlyList<Sample> Samples { get; }

    /// <summary>The <c># TYPE</c> of each metric family.</summary>
    public IReadOnlyDictionary<string, string> Types { get; }

    /// <summary>Parses the text; a line that is not a comment, a blank or a well-formed sample fails the test.</summary>
    public static PrometheusText Parse(string text)
    {
        var samples = new List<Sample>();
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line.StartsWith("# HELP ", StringComparison.Ordinal))
                continue;
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                types[parts[2]] = parts[3];
                continue;
            }
            samples.Add(ParseSample(line));
        }
        return new PrometheusText(samples, types);
    }

    /// <summary>The samples named <paramref name="name"/> whose labels include <paramref name="labels"/>.</summary>
    public IEnumerable<Sample> Find(string name, params (string Key, string Value)[] labels)
        => Samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value));

    /// <summary>The one sample's value; fails when none or several match.</summary>
    public double Value(string name, params (string Key, string Value)[] labels) => Assert.Single(Find(name, labels)).Value;

    private static Sample ParseSample(string line)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        var brace = line.IndexOf('{');
        string name;
        int rest;
        if (brace < 0)
        {
            name = line[..line.IndexOf(' ')];
            rest = name.Length;
        }
        else
        {
            name = line[..brace];
            var i = brace + 1;
            while (line[i] != '}')
            {
                var equals = line.IndexOf('=', i);
                var key = line[i..equals];
                Assert.Equal('"', line[equals + 1]);
                var value = new StringBuilder();
                var j = equals + 2;
                for (; line[j] != '"'; j++)
                {
                    if (line[j] == '\\')
                    {
                        j++;
                        value.Append(line[j] == 'n' ? '\n' : line[j]);
                    }
                    else
                        value.Append(line[j]);
                }
                labels[key] = value.ToString();
                i = line[j + 1] == ',' ? j + 2 : j + 1;
            }
            rest = i + 1;
        }
        // The value, then an optional timestamp.
        var fields = line[rest..].Trim().Split(' ');
        var number = fields[0] switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            var other => double.Parse(other, NumberStyles.Float, CultureInfo.InvariantCulture),
        };
        return new Sample(name, labels, number);
    }
}
