namespace AgentHost.Plugins.Tests;

public class TextPluginTests
{
    private readonly TextPlugin _text = new();

    [Theory]
    [InlineData("", 0)]
    [InlineData("hello", 5)]
    [InlineData("café", 4)]
    [InlineData("cafe\u0301", 4)]        // e + combining acute accent is one character
    [InlineData("👍🏽 ok", 4)]            // emoji with skin tone modifier is one character
    public void LengthCountsUserPerceivedCharacters(string text, int expected) => Assert.Equal(expected, _text.Length(text));

    [Theory]
    [InlineData("", 0)]
    [InlineData("   ", 0)]
    [InlineData("one", 1)]
    [InlineData("  Once upon\ta time,\nthere was a cat.  ", 8)]
    public void Word_count(string text, int expected) => Assert.Equal(expected, _text.WordCount(text));

    [Theory]
    [InlineData("", 0)]
    [InlineData("one line", 1)]
    [InlineData("a\nb\r\nc", 3)]
    [InlineData("a\nb\n", 2)]
    public void Line_count(string text, int expected) => Assert.Equal(expected, _text.LineCount(text));

    [Fact]
    public void Case_conversion_is_culture_invariant()
    {
        var culture = System.Globalization.CultureInfo.CurrentCulture;
        try
        {
            // Turkish casing maps i to İ and I to ı; the skill must not.
            System.Globalization.CultureInfo.CurrentCulture = new System.Globalization.CultureInfo("tr-TR");
            Assert.Equal("TITLE", _text.Uppercase("title"));
            Assert.Equal("title", _text.Lowercase("TITLE"));
        }
        finally
        {
            System.Globalization.CultureInfo.CurrentCulture = culture;
        }
    }

    [Theory]
    [InlineData("stressed", "desserts")]
    [InlineData("", "")]
    [InlineData("ab👍🏽c", "c👍🏽ba")]
    [InlineData("cafe\u0301!", "!e\u0301fac")]
    public void Reverse_keeps_characters_intact(string text, string expected) => Assert.Equal(expected, _text.Reverse(text));

    [Fact]
    public void Trim_and_replace()
    {
        Assert.Equal("a b", _text.Trim(" \t a b \n"));
        Assert.Equal("the dog and the dog", _text.Replace("the cat and the cat", "cat", "dog"));
        Assert.Equal("The  sat", _text.Replace("The cat sat", "cat", ""));
        Assert.Equal("Cat cat", _text.Replace("Cat cat", "CAT", "dog"));
        Assert.Contains("must not be empty", Assert.Throws<ArgumentException>(() => _text.Replace("abc", "", "x")).Message);
    }
}
