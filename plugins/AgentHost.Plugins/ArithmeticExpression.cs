using System.Globalization;

namespace AgentHost.Plugins;

/// <summary>
/// Evaluates arithmetic expressions: decimal numbers (<c>2</c>, <c>2.5</c>, <c>.5</c>), <c>+ - * / % ^</c>,
/// parentheses and unary minus/plus; <c>×</c>, <c>÷</c> and <c>−</c> are read as <c>*</c>, <c>/</c> and <c>-</c>.
/// Precedence from loosest to tightest: <c>+ -</c>, then <c>* / %</c>, then unary <c>- +</c>, then <c>^</c>.
/// Binary operators are left-associative except <c>^</c>, which is right-associative, so <c>2^3^2</c> is
/// <c>2^9</c> and <c>-2^2</c> is <c>-4</c>. <c>%</c> is the remainder with the sign of the dividend.
/// </summary>
/// <remarks>
/// A hand-written recursive-descent parser over the text: nothing is compiled or executed, so an
/// expression can only ever compute a number. Length and nesting are bounded so that hostile input
/// cannot exhaust the stack.
/// </remarks>
public static class ArithmeticExpression
{
    /// <summary>The longest expression accepted, in characters.</summary>
    public const int MaxLength = 1000;

    /// <summary>The deepest nesting of parentheses and unary signs accepted.</summary>
    public const int MaxDepth = 64;

    /// <summary>Evaluates <paramref name="expression"/>.</summary>
    /// <param name="expression">The expression, e.g. <c>(2 + 3) * 4.5</c>.</param>
    /// <returns>The value; always a finite number.</returns>
    /// <exception cref="FormatException">The expression is empty, too long, too deeply nested or malformed;
    /// the message says what was expected at which position (1-based).</exception>
    /// <exception cref="DivideByZeroException">A <c>/</c> or <c>%</c> has a zero divisor.</exception>
    /// <exception cref="OverflowException">An operation's result is not a finite number (e.g. <c>10^400</c>, <c>(-8)^0.5</c>).</exception>
    public static double Evaluate(string expression)
    {
        ArgumentNullException.ThrowIfNull(expression);
        if (expression.Length > MaxLength)
            throw new FormatException($"The expression is {expression.Length} characters long; at most {MaxLength} are accepted.");

        var parser = new Parser(expression);
        if (parser.AtEnd)
            throw new FormatException("The expression is empty.");
        var value = parser.ParseSum();
        if (!parser.AtEnd)
            throw parser.Unexpected("an operator");
        return value;
    }

    private sealed class Parser(string text)
    {
        private int _pos;
        private int _depth;

        /// <summary>True when only white space is left.</summary>
        public bool AtEnd
        {
            get
            {
                SkipSpaces();
                return _pos >= text.Length;
            }
        }

        // sum := product (('+' | '-') product)*
        public double ParseSum()
        {
            var left = ParseProduct();
            while (true)
            {
                var op = Peek();
                if (op is not ('+' or '-'))
                    return left;
                var at = _pos++;
                var right = ParseProduct();
                left = Finite(op == '+' ? left + right : left - right, op, at);
            }
        }

        // product := unary (('*' | '/' | '%') unary)*
        private double ParseProduct()
        {
            var left = ParseUnary();
            while (true)
            {
                var op = Peek();
                if (op is not ('*' or '/' or '%'))
                    return left;
                var at = _pos++;
                var right = ParseUnary();
                if (op != '*' && right == 0)
                    throw new DivideByZeroException($"Division by zero: the right side of the '{text[at]}' at position {at + 1} is 0.");
                left = Finite(op switch { '*' => left * right, '/' => left / right, _ => left % right }, op, at);
            }
        }

        // unary := ('-' | '+') unary | power
        private double ParseUnary()
        {
            var op = Peek();
            if (op is not ('-' or '+'))
                return ParsePower();
            _pos++;
            Enter();
            var value = ParseUnary();
            _depth--;
            return op == '-' ? -value : value;
        }

        // power := primary ('^' unary)?  The exponent is a unary, so 2^-1 works and 2^3^2 nests to the right.
        private double ParsePower()
        {
            var value = ParsePrimary();
            if (Peek() != '^')
                return value;
            var at = _pos++;
            Enter();
            var exponent = ParseUnary();
            _depth--;
            return Finite(Math.Pow(value, exponent), '^', at);
        }

        // primary := number | '(' sum ')'
        private double ParsePrimary()
        {
            var c = Peek();
            if (c == '(')
            {
                var open = _pos++;
                Enter();
                var value = ParseSum();
                _depth--;
                if (Peek() != ')')
                {
                    throw AtEnd
                        ? new FormatException($"The '(' at position {open + 1} is never closed.")
                        : Unexpected("')' or an operator");
                }
                _pos++;
                return value;
            }
            if (char.IsAsciiDigit(c) || c == '.')
                return ParseNumber();
            throw Unexpected("a number or '('");
        }

        private double ParseNumber()
        {
            var start = _pos;
            var digits = 0;
            while (_pos < text.Length && char.IsAsciiDigit(text[_pos]))
            {
                _pos++;
                digits++;
            }
            if (_pos < text.Length && text[_pos] == '.')
            {
                _pos++;
                while (_pos < text.Length && char.IsAsciiDigit(text[_pos]))
                {
                    _pos++;
                    digits++;
                }
            }
            if (digits == 0)
                throw new FormatException($"A lone '.' at position {start + 1} is not a number.");
            var value = double.Parse(text.AsSpan(start, _pos - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
            return Finite(value, null, start);
        }

        public FormatException Unexpected(string expected) =>
            _pos >= text.Length
                ? new FormatException($"The expression ends where {expected} was expected.")
                : new FormatException($"Unexpected '{text[_pos]}' at position {_pos + 1}; expected {expected}.");

        private void Enter()
        {
            if (++_depth > MaxDepth)
                throw new FormatException($"The expression nests parentheses or signs more than {MaxDepth} levels deep (at position {_pos + 1}).");
        }

        private double Finite(double value, char? op, int at)
        {
            if (double.IsFinite(value))
                return value;
            throw op is null
                ? new OverflowException($"The number at position {at + 1} is too large.")
                : new OverflowException($"The result of the '{text[at]}' at position {at + 1} is not a finite number.");
        }

        /// <summary>The next significant character with the typographic operators normalised, or '\0' at the end.</summary>
        private char Peek()
        {
            SkipSpaces();
            if (_pos >= text.Length)
                return '\0';
            return text[_pos] switch
            {
                '×' => '*',
                '÷' => '/',
                '−' => '-',
                var c => c,
            };
        }

        private void SkipSpaces()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos]))
                _pos++;
        }
    }
}
