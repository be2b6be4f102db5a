namespace AgentHost.Plugins.Tests;

public class ArithmeticExpressionTests
{
    [Theory]
    [InlineData("2 + 3 * 4", 14)]
    [InlineData("(2 + 3) * 4", 20)]
    [InlineData("10 - 4 - 3", 3)]           // left-associative
    [InlineData("100 / 10 / 5", 2)]         // left-associative
    [InlineData("2 ^ 3 ^ 2", 512)]          // right-associative: 2^(3^2)
    [InlineData("-2 ^ 2", -4)]              // ^ binds tighter than unary minus
    [InlineData("(-2) ^ 2", 4)]
    [InlineData("2 ^ -1", 0.5)]
    [InlineData("2 * -3", -6)]
    [InlineData("--3", 3)]
    [InlineData("+4", 4)]
    [InlineData("7 % 3", 1)]
    [InlineData("-7 % 3", -1)]              // remainder has the sign of the dividend
    [InlineData("1 + 2 * 3 ^ 2 % 5", 4)]    // 3^2=9, 2*9=18, 18%5=3, 1+3
    [InlineData("2.5 * .4", 1)]
    [InlineData("  ( ( 1.5 ) )  ", 1.5)]
    [InlineData("6 × 7 ÷ 2 − 1", 20)]       // typographic operators
    [InlineData("0.1 + 0.2", 0.30000000000000004)]
    public void EvaluatesWithPrecedenceAndAssociativity(string expression, double expected) =>
        Assert.Equal(expected, ArithmeticExpression.Evaluate(expression));

    [Theory]
    [InlineData("", "empty")]
    [InlineData("   ", "empty")]
    [InlineData("1 +", "ends where a number or '(' was expected")]
    [InlineData("(1 + 2", "'(' at position 1 is never closed")]
    [InlineData("1 + 2)", "Unexpected ')' at position 6")]
    [InlineData("2 3", "Unexpected '3' at position 3")]
    [InlineData("2(3)", "Unexpected '(' at position 2")]
    [InlineData("1.2.3", "Unexpected '.' at position 4")]
    [InlineData(".", "lone '.' at position 1")]
    [InlineData("* 2", "Unexpected '*' at position 1")]
    [InlineData("1e5", "Unexpected 'e' at position 2")]
    [InlineData("1,5", "Unexpected ',' at position 2")]
    [InlineData("x + 1", "Unexpected 'x' at position 1")]
    public void Malformed_input_names_the_problem_and_position(string expression, string message)
    {
        var error = Assert.Throws<FormatException>(() => ArithmeticExpression.Evaluate(expression));
        Assert.Contains(message, error.Message);
    }

    [Theory]
    [InlineData("1 / 0", "'/' at position 3")]
    [InlineData("5 % (2 - 2)", "'%' at position 3")]
    [InlineData("1 / -0", "'/' at position 3")]
    public void Division_by_zero_is_an_error(string expression, string where)
    {
        var error = Assert.Throws<DivideByZeroException>(() => ArithmeticExpression.Evaluate(expression));
        Assert.Contains("Division by zero", error.Message);
        Assert.Contains(where, error.Message);
    }

    [Theory]
    [InlineData("10 ^ 400", "'^' at position 4")]
    [InlineData("(-8) ^ 0.5", "'^' at position 6")]
    [InlineData("0 ^ -1", "'^' at position 3")]
    public void Non_finite_results_are_errors(string expression, string where)
    {
        var error = Assert.Throws<OverflowException>(() => ArithmeticExpression.Evaluate(expression));
        Assert.Contains(where, error.Message);
    }

    [Fact]
    public void Huge_number_literal_is_an_error()
    {
        var error = Assert.Throws<OverflowException>(() => ArithmeticExpression.Evaluate("1" + new string('0', 400)));
        Assert.Contains("too large", error.Message);
    }

    [Theory]
    [InlineData("System.IO.File.Delete(\"x\")")]
    [InlineData("Math.Pow(2, 3)")]
    [InlineData("1; rm -rf /")]
    [InlineData("__import__('os')")]
    [InlineData("{{ 1 + 1 }}")]
    [InlineData("eval(1)")]
    public void Code_is_never_run_only_rejected(string expression) =>
        Assert.Throws<FormatException>(() => ArithmeticExpression.Evaluate(expression));

    [Fact]
    public void Deep_nesting_is_rejected_not_a_stack_overflow()
    {
        var nested = new string('(', 10_000) + "1" + new string(')', 10_000);
        Assert.Throws<FormatException>(() => ArithmeticExpression.Evaluate(nested[..ArithmeticExpression.MaxLength]));

        var deep = new string('(', ArithmeticExpression.MaxDepth + 1) + "1" + new string(')', ArithmeticExpression.MaxDepth + 1);
        Assert.Contains("levels deep", Assert.Throws<FormatException>(() => ArithmeticExpression.Evaluate(deep)).Message);
        var signs = new string('-', ArithmeticExpression.MaxDepth + 1) + "1";
        Assert.Contains("levels deep", Assert.Throws<FormatException>(() => ArithmeticExpression.Evaluate(signs)).Message);

        var allowed = new string('(', ArithmeticExpression.MaxDepth) + "1" + new string(')', ArithmeticExpression.MaxDepth);
        Assert.Equal(1, ArithmeticExpression.Evaluate(allowed));
    }

    [Fact]
    public void Overlong_input_is_rejected()
    {
        var text = string.Join("+", Enumerable.Repeat("1", ArithmeticExpression.MaxLength));
        Assert.Contains("at most", Assert.Throws<FormatException>(() => ArithmeticExpression.Evaluate(text)).Message);
        Assert.Throws<ArgumentNullException>(() => ArithmeticExpression.Evaluate(null!));
    }
}
