using AgentHost.Llama.Decoding;

namespace AgentHost.Llama.Tests.Decoding;

public sealed class StrategyOptionsTests
{
    private static StrategyOptions Options(params (string Key, string Value)[] values)
        => new(values.Select(v => KeyValuePair.Create(v.Key, v.Value)));

    [Fact]
    public void Typed_getters_parse_values_and_fall_back_to_defaults()
    {
        var options = Options(("n", "4"), ("x", "0.25"));

        Assert.Equal(4, options.GetInt("n", 10, min: 1));
        Assert.Equal(0.25f, options.GetFloat("x", 1f, 0f, 1f));
        Assert.Equal(7, options.GetInt("missing", 7, min: 1));
        options.EnsureAllRead("test");
    }

    [Theory]
    [InlineData("abc", "must be a whole number of at least 1, not 'abc'")]
    [InlineData("0", "must be a whole number of at least 1, not '0'")]
    public void A_value_that_does_not_parse_or_is_out_of_range_names_the_option(string value, string expected)
    {
        var error = Assert.Throws<AgentHostException>(() => Options(("n", value)).GetInt("n", 10, min: 1));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Equal($"Option 'n' {expected}.", error.Message);
    }

    [Fact]
    public void An_option_the_strategy_does_not_read_is_refused()
    {
        var error = Assert.Throws<AgentHostException>(() => DecodingStrategies.Create("greedy", Options(("cautious_max_trials", "3"))));
        Assert.Equal("Option 'cautious_max_trials' does not apply to decoding strategy 'greedy'.", error.Message);
    }
}
