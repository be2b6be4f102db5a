using System.ComponentModel;
using Microsoft.SemanticKernel;

namespace AgentHost.Plugins;

/// <summary>
/// Arithmetic skills. <see cref="Evaluate"/> takes a whole expression; the four basic operations take
/// two numbers, which small models call more reliably than they write expressions.
/// A failure (bad expression, division by zero, overflow) throws with a clear message, which function
/// calling hands back to the model as the call's error result.
/// </summary>
public sealed class MathPlugin
{
    /// <summary>Evaluates an arithmetic expression (see <see cref="ArithmeticExpression"/>).</summary>
    /// <param name="expression">The expression.</param>
    /// <returns>Its value.</returns>
    [KernelFunction]
    [Description("Evaluates an arithmetic expression with numbers, + - * / % ^ (power), parentheses and unary minus, e.g. '(2 + 3) * 4.5' or '2^10 - 1'. Returns the number.")]
    public double Evaluate([Description("The arithmetic expression, e.g. '12 * (3 + 4.5)'.")] string expression) =>
        ArithmeticExpression.Evaluate(expression);

    /// <summary>a + b.</summary>
    /// <param name="a">The first number.</param>
    /// <param name="b">The number to add.</param>
    /// <returns>The sum.</returns>
    [KernelFunction]
    [Description("Adds two numbers: a + b.")]
    public double Add([Description("The first number.")] double a, [Description("The number to add.")] double b) =>
        Finite(a + b, "sum");

    /// <summary>a - b.</summary>
    /// <param name="a">The number to subtract from.</param>
    /// <param name="b">The number to subtract.</param>
    /// <returns>The difference.</returns>
    [KernelFunction]
    [Description("Subtracts b from a: a - b.")]
    public double Subtract([Description("The number to subtract from.")] double a, [Description("The number to subtract.")] double b) =>
        Finite(a - b, "difference");

    /// <summary>a * b.</summary>
    /// <param name="a">The first factor.</param>
    /// <param name="b">The second factor.</param>
    /// <returns>The product.</returns>
    [KernelFunction]
    [Description("Multiplies two numbers: a * b.")]
    public double Multiply([Description("The first factor.")] double a, [Description("The second factor.")] double b) =>
        Finite(a * b, "product");

    /// <summary>a / b.</summary>
    /// <param name="a">The dividend.</param>
    /// <param name="b">The divisor; must not be 0.</param>
    /// <returns>The quotient.</returns>
    /// <exception cref="DivideByZeroException"><paramref name="b"/> is 0.</exception>
    [KernelFunction]
    [Description("Divides a by b: a / b. b must not be 0.")]
    public double Divide([Description("The number to divide (dividend).")] double a, [Description("The number to divide by (divisor), not 0.")] double b) =>
        b == 0 ? throw new DivideByZeroException("Cannot divide by zero.") : Finite(a / b, "quotient");

    private static double Finite(double value, string what) =>
        double.IsFinite(value) ? value : throw new OverflowException($"The {what} is not a finite number.");
}
