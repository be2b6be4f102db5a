namespace AgentHost.Plugins.Tests;

public class MathPluginTests
{
    private readonly MathPlugin _math = new();

    [Fact]
    public void Basic_operations()
    {
        Assert.Equal(5.5, _math.Add(2, 3.5));
        Assert.Equal(-1.5, _math.Subtract(2, 3.5));
        Assert.Equal(7, _math.Multiply(2, 3.5));
        Assert.Equal(0.8, _math.Divide(2, 2.5));
        Assert.Equal(14, _math.Evaluate("2 + 3 * 4"));
    }

    [Fact]
    public void Failures_are_clear_errors()
    {
        Assert.Equal("Cannot divide by zero.", Assert.Throws<DivideByZeroException>(() => _math.Divide(1, 0)).Message);
        Assert.Equal("The product is not a finite number.", Assert.Throws<OverflowException>(() => _math.Multiply(1e308, 10)).Message);
        Assert.Equal("The sum is not a finite number.", Assert.Throws<OverflowException>(() => _math.Add(double.MaxValue, double.MaxValue)).Message);
        Assert.Throws<FormatException>(() => _math.Evaluate("2 +"));
    }
}
