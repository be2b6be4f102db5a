using System.Globalization;

namespace AgentHost.Extensions.AI.Jinja;

/// <summary>A recursive-descent parser with the reference renderer's precedence, its nesting depth bounded.</summary>
internal sealed class JinjaParser
{
    private readonly List<Token> _tokens;
    private readonly Func<int, string, Exception> _error;
    private readonly int _maxDepth;
    private int _current;
    private int _depth;

    private JinjaParser(List<Token> tokens, Func<int, string, Exception> error, int maxDepth)
    {
        _tokens = tokens;
        _error = error;
        _maxDepth = maxDepth;
    }

    public static List<Node> Parse(List<Token> tokens, Func<int, string, Exception> error, int maxDepth)
    {
        var parser = new JinjaParser(tokens, error, maxDepth);
        var body = new List<Node>();
        while (parser._current < tokens.Count)
            body.Add(parser.ParseAny());
        return body;
    }

    private Token Peek => _current < _tokens.Count ? _tokens[_current] : new Token("", TokenType.Text, _tokens.Count > 0 ? _tokens[^1].Position : 0);
    private int Pos => Peek.Position;
    private bool Is(TokenType type) => _current < _tokens.Count && _tokens[_current].Type == type;
    private bool IsIdent(string name) => Is(TokenType.Identifier) && _tokens[_current].Value == name;
    private bool IsStatement(string name) =>
        _current + 1 < _tokens.Count && _tokens[_current].Type == TokenType.OpenStatement && _tokens[_current + 1].Type == TokenType.Identifier && _tokens[_current + 1].Value == name;

    private Token Expect(TokenType type, string what)
    {
        if (!Is(type))
            throw _error(Pos, $"Expected {what}{(_current < _tokens.Count ? $" but found '{Peek.Value}'" : " but the template ended")}");
        return _tokens[_current++];
    }

    private void ExpectIdent(string name)
    {
        if (!IsIdent(name))
            throw _error(Pos, $"Expected '{name}'{(_current < _tokens.Count ? $" but found '{Peek.Value}'" : " but the template ended")}");
        _current++;
    }

    private void Enter()
    {
        if (++_depth > _maxDepth)
            throw _error(Pos, $"the template nests deeper than {_maxDepth} levels (JinjaLimits.MaxParseDepth)");
    }

    private Node ParseAny()
    {
        var token = Peek;
        switch (token.Type)
        {
            case TokenType.Comment:
                _current++;
                return new TextNode(string.Empty, token.Position);
            case TokenType.Text:
                _current++;
                return new TextNode(token.Value, token.Position);
            case TokenType.OpenStatement:
                return ParseStatement();
            case TokenType.OpenExpression:
                _current++;
                var expression = ParseExpression();
                Expect(TokenType.CloseExpression, "'}}'");
                return new OutputNode(expression, token.Position);
            default:
                throw _error(token.Position, $"Unexpected token '{token.Value}'");
        }
    }

    private List<Node> ParseBody(params string[] ends)
    {
        var body = new List<Node>();
        while (true)
        {
            if (_current >= _tokens.Count)
                throw _error(Pos, $"Missing {string.Join(" or ", ends.Select(e => "{% " + e + " %}"))}");
            foreach (var end in ends)
            {
                if (IsStatement(end))
                    return body;
            }
            body.Add(ParseAny());
        }
    }

    private Node ParseStatement()
    {
        Enter();
        var start = Pos;
        Expect(TokenType.OpenStatement, "'{%'");
        if (!Is(TokenType.Identifier))
            throw _error(Pos, "Expected a statement name");
        var name = _tokens[_current++].Value;
        Node result;
        switch (name)
        {
            case "set":
                result = ParseSet(start);
                break;
            case "if":
                result = ParseIf(start);
                break;
            case "for":
                result = ParseFor(start);
                break;
            case "macro":
            {
                var macroName = Expect(TokenType.Identifier, "a macro name").Value;
                var parameters = ParseParameters();
                Expect(TokenType.CloseStatement, "'%}'");
                var body = ParseBody("endmacro");
                EndStatement("endmacro");
                result = new MacroNode(macroName, parameters, body, start);
                break;
            }
            case "call":
            {
                var callerParameters = Is(TokenType.OpenParen) ? ParseParameters() : [];
                var call = ParsePostfix(ParsePrimary());
                if (call is not CallNode)
                    throw _error(start, "Expected a macro call after 'call'");
                Expect(TokenType.CloseStatement, "'%}'");
                var body = ParseBody("endcall");
                EndStatement("endcall");
                result = new CallBlockNode(call, callerParameters, body, start);
                break;
            }
            case "filter":
            {
                var filter = ParseFilterCall(new LiteralNode(null, start));
                Expect(TokenType.CloseStatement, "'%}'");
                var body = ParseBody("endfilter");
                EndStatement("endfilter");
                result = new FilterBlockNode(filter, body, start);
                break;
            }
            case "break":
                Expect(TokenType.CloseStatement, "'%}'");
                result = new BreakNode(start);
                break;
            case "continue":
                Expect(TokenType.CloseStatement, "'%}'");
                result = new ContinueNode(start);
                break;
            default:
                throw _error(start, $"Unknown statement '{name}'");
        }
        _depth--;
        return result;
    }

    private void EndStatement(string name)
    {
        Expect(TokenType.OpenStatement, "'{%'");
        ExpectIdent(name);
        Expect(TokenType.CloseStatement, "'%}'");
    }

    private Node ParseSet(int start)
    {
        var target = ParseExpressionSequence(primary: false);
        if (Is(TokenType.Equals))
        {
            _current++;
            var value = ParseExpressionSequence(primary: false);
            Expect(TokenType.CloseStatement, "'%}'");
            return new SetNode(target, value, null, start);
        }
        Expect(TokenType.CloseStatement, "'%}'");
        var body = ParseBody("endset");
        EndStatement("endset");
        return new SetNode(target, null, body, start);
    }

    private Node ParseIf(int start)
    {
        var test = ParseExpression();
        Expect(TokenType.CloseStatement, "'%}'");
        var body = ParseBody("elif", "else", "endif");
        var alternate = new List<Node>();
        if (IsStatement("elif"))
        {
            var at = Pos;
            _current += 2;
            Enter();
            alternate.Add(ParseIf(at));
            _depth--;
            return new IfNode(test, body, alternate, start);
        }
        if (IsStatement("else"))
        {
            _current += 2;
            Expect(TokenType.CloseStatement, "'%}'");
            alternate = ParseBody("endif");
        }
        EndStatement("endif");
        return new IfNode(test, body, alternate, start);
    }

    private Node ParseFor(int start)
    {
        var target = ParseExpressionSequence(primary: true);
        ExpectIdent("in");
        var iterable = ParseExpression();
        Node? filter = null;
        if (iterable is TernaryNode { Else: null } conditional)
        {
            // `for x in items if cond` parses as a ternary without else.
            iterable = conditional.Then;
            filter = conditional.Test;
        }
        Expect(TokenType.CloseStatement, "'%}'");
        var body = ParseBody("else", "endfor");
        var alternate = new List<Node>();
        if (IsStatement("else"))
        {
            _current += 2;
            Expect(TokenType.CloseStatement, "'%}'");
            alternate = ParseBody("endfor");
        }
        EndStatement("endfor");
        return new ForNode(target, iterable, filter, body, alternate, start);
    }

    private List<(string, Node?)> ParseParameters()
    {
        Expect(TokenType.OpenParen, "'('");
        var parameters = new List<(string, Node?)>();
        while (!Is(TokenType.CloseParen))
        {
            var name = Expect(TokenType.Identifier, "a parameter name").Value;
            Node? value = null;
            if (Is(TokenType.Equals))
            {
                _current++;
                value = ParseExpression();
            }
            parameters.Add((name, value));
            if (!Is(TokenType.CloseParen))
                Expect(TokenType.Comma, "','");
        }
        _current++;
        return parameters;
    }

    private Node ParseExpressionSequence(bool primary)
    {
        var start = Pos;
        var items = new List<Node> { primary ? ParsePrimary() : ParseExpression() };
        var isTuple = false;
        while (Is(TokenType.Comma))
        {
            _current++;
            isTuple = true;
            items.Add(primary ? ParsePrimary() : ParseExpression());
        }
        return isTuple ? new ListNode(items, true, start) : items[0];
    }

    private Node ParseExpression()
    {
        Enter();
        var result = ParseTernary();
        _depth--;
        return result;
    }

    private Node ParseTernary()
    {
        var a = ParseOr();
        if (IsIdent("if"))
        {
            var at = Pos;
            _current++;
            var test = ParseOr();
            if (IsIdent("else"))
            {
                _current++;
                Enter();
                var falseExpr = ParseTernary();
                _depth--;
                return new TernaryNode(test, a, falseExpr, at);
            }
            return new TernaryNode(test, a, null, at);
        }
        return a;
    }

    private Node ParseOr()
    {
        var left = ParseAnd();
        while (IsIdent("or"))
        {
            var at = Pos;
            _current++;
            left = new BinaryNode("or", left, ParseAnd(), at);
        }
        return left;
    }

    private Node ParseAnd()
    {
        var left = ParseNot();
        while (IsIdent("and"))
        {
            var at = Pos;
            _current++;
            left = new BinaryNode("and", left, ParseNot(), at);
        }
        return left;
    }

    private Node ParseNot()
    {
        if (IsIdent("not"))
        {
            var at = Pos;
            _current++;
            Enter();
            var operand = ParseNot();
            _depth--;
            return new UnaryNode("not", operand, at);
        }
        return ParseComparison();
    }

    private Node ParseComparison()
    {
        var left = ParseAdditive();
        while (true)
        {
            var at = Pos;
            string op;
            if (IsIdent("in"))
            {
                op = "in";
                _current++;
            }
            else if (IsIdent("not") && _current + 1 < _tokens.Count && _tokens[_current + 1].Type == TokenType.Identifier && _tokens[_current + 1].Value == "in")
            {
                op = "not in";
                _current += 2;
            }
            else if (Is(TokenType.ComparisonBinaryOperator))
            {
                op = _tokens[_current++].Value;
            }
            else
            {
                return left;
            }
            left = new BinaryNode(op, left, ParseAdditive(), at);
        }
    }

    private Node ParseAdditive()
    {
        var left = ParseMultiplicative();
        while (Is(TokenType.AdditiveBinaryOperator))
        {
            var token = _tokens[_current++];
            left = new BinaryNode(token.Value, left, ParseMultiplicative(), token.Position);
        }
        return left;
    }

    private Node ParseMultiplicative()
    {
        var left = ParsePower();
        while (Is(TokenType.MultiplicativeBinaryOperator))
        {
            var token = _tokens[_current++];
            left = new BinaryNode(token.Value, left, ParsePower(), token.Position);
        }
        return left;
    }

    private Node ParsePower()
    {
        var left = ParseTest();
        while (Is(TokenType.ExponentiationBinaryOperator))
        {
            var token = _tokens[_current++];
            left = new BinaryNode("**", left, ParseTest(), token.Position);
        }
        return left;
    }

    private Node ParseTest()
    {
        var operand = ParseFilter();
        while (IsIdent("is"))
        {
            var at = Pos;
            _current++;
            var negate = false;
            if (IsIdent("not"))
            {
                _current++;
                negate = true;
            }
            string name;
            if (Is(TokenType.Identifier))
                name = _tokens[_current++].Value;
            else
                throw _error(Pos, "Expected a test name after 'is'");
            var args = new List<Node>();
            if (Is(TokenType.OpenParen))
            {
                var (a, _) = ParseArguments();
                args = a;
            }
            else if (name is "divisibleby" or "equalto" or "sameas" or "eq" or "ne" or "lt" or "gt" or "le" or "ge" && (Is(TokenType.NumericLiteral) || Is(TokenType.StringLiteral) || Is(TokenType.Identifier)))
            {
                args.Add(ParsePrimary());
            }
            operand = new TestNode(operand, name, negate, args, at);
        }
        return operand;
    }

    private Node ParseFilter()
    {
        var operand = ParseUnarySign();
        while (Is(TokenType.Pipe))
        {
            _current++;
            operand = ParseFilterCall(operand);
        }
        return operand;
    }

    private FilterNode ParseFilterCall(Node operand)
    {
        var at = Pos;
        var name = Expect(TokenType.Identifier, "a filter name").Value;
        var args = new List<Node>();
        var kwargs = new List<(string, Node)>();
        if (Is(TokenType.OpenParen))
            (args, kwargs) = ParseArguments();
        return new FilterNode(operand, name, args, kwargs, at);
    }

    private Node ParseUnarySign()
    {
        if ((Is(TokenType.UnaryOperator) || Is(TokenType.AdditiveBinaryOperator)) && Peek.Value is "-" or "+")
        {
            var token = _tokens[_current++];
            Enter();
            var operand = ParseUnarySign();
            _depth--;
            return new UnaryNode(token.Value, operand, token.Position);
        }
        return ParsePostfix(ParsePrimary());
    }

    private Node ParsePostfix(Node node)
    {
        while (true)
        {
            if (Is(TokenType.Dot))
            {
                var at = Pos;
                _current++;
                if (Is(TokenType.Identifier))
                    node = new MemberNode(node, new LiteralNode(_tokens[_current++].Value, at), false, at);
                else if (Is(TokenType.NumericLiteral))
                    node = new MemberNode(node, new LiteralNode(long.Parse(_tokens[_current++].Value, CultureInfo.InvariantCulture), at), false, at);
                else
                    throw _error(Pos, "Expected an attribute name after '.'");
            }
            else if (Is(TokenType.OpenSquareBracket))
            {
                var at = Pos;
                _current++;
                node = new MemberNode(node, ParseSubscript(at), true, at);
                Expect(TokenType.CloseSquareBracket, "']'");
            }
            else if (Is(TokenType.OpenParen))
            {
                var at = Pos;
                var (args, kwargs) = ParseArguments();
                node = new CallNode(node, args, kwargs, at);
            }
            else
            {
                return node;
            }
        }
    }

    private Node ParseSubscript(int at)
    {
        var parts = new List<Node?>();
        var isSlice = false;
        Node? current = null;
        while (!Is(TokenType.CloseSquareBracket))
        {
            if (_current >= _tokens.Count)
                throw _error(at, "Expected ']'");
            if (Is(TokenType.Colon))
            {
                parts.Add(current);
                current = null;
                _current++;
                isSlice = true;
            }
            else
            {
                current = ParseExpression();
            }
        }
        if (!isSlice)
            return current ?? throw _error(at, "Expected an index");
        parts.Add(current);
        if (parts.Count > 3)
            throw _error(at, "A slice takes at most three parts");
        return new SliceNode(parts[0], parts.Count > 1 ? parts[1] : null, parts.Count > 2 ? parts[2] : null, at);
    }

    private (List<Node>, List<(string, Node)>) ParseArguments()
    {
        Enter();
        Expect(TokenType.OpenParen, "'('");
        var args = new List<Node>();
        var kwargs = new List<(string, Node)>();
        while (!Is(TokenType.CloseParen))
        {
            if (_current >= _tokens.Count)
                throw _error(Pos, "Expected ')'");
            if (Is(TokenType.Identifier) && _current + 1 < _tokens.Count && _tokens[_current + 1].Type == TokenType.Equals)
            {
                var name = _tokens[_current].Value;
                _current += 2;
                kwargs.Add((name, ParseExpression()));
            }
            else if (Is(TokenType.MultiplicativeBinaryOperator) && Peek.Value == "*" ||
                     Is(TokenType.ExponentiationBinaryOperator))
            {
                throw _error(Pos, "Argument unpacking (*args, **kwargs) is not supported");
            }
            else
            {
                args.Add(ParseExpression());
            }
            if (!Is(TokenType.CloseParen))
                Expect(TokenType.Comma, "','");
        }
        _current++;
        _depth--;
        return (args, kwargs);
    }

    private Node ParsePrimary()
    {
        var token = Peek;
        if (_current >= _tokens.Count)
            throw _error(token.Position, "Unexpected end of template");
        switch (token.Type)
        {
            case TokenType.NumericLiteral:
            {
                _current++;
                var text = token.Value;
                if (text.Contains('.'))
                    return new LiteralNode(double.Parse(text, CultureInfo.InvariantCulture), token.Position);
                return new LiteralNode(long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) ? (object)n : double.Parse(text, CultureInfo.InvariantCulture), token.Position);
            }
            case TokenType.StringLiteral:
            {
                _current++;
                var value = token.Value;
                while (Is(TokenType.StringLiteral))
                    value += _tokens[_current++].Value; // adjacent literals concatenate
                return new LiteralNode(JinjaString.Markup(value), token.Position);
            }
            case TokenType.Identifier:
                _current++;
                return token.Value switch
                {
                    "true" or "True" => new LiteralNode(true, token.Position),
                    "false" or "False" => new LiteralNode(false, token.Position),
                    "none" or "None" => new LiteralNode(null, token.Position),
                    _ => new NameNode(token.Value, token.Position),
                };
            case TokenType.OpenParen:
            {
                _current++;
                Enter();
                var expression = ParseExpressionSequence(primary: false);
                _depth--;
                Expect(TokenType.CloseParen, "')'");
                return expression;
            }
            case TokenType.OpenSquareBracket:
            {
                _current++;
                Enter();
                var items = new List<Node>();
                while (!Is(TokenType.CloseSquareBracket))
                {
                    items.Add(ParseExpression());
                    if (!Is(TokenType.CloseSquareBracket))
                        Expect(TokenType.Comma, "','");
                }
                _current++;
                _depth--;
                return new ListNode(items, false, token.Position);
            }
            case TokenType.OpenCurlyBracket:
            {
                _current++;
                Enter();
                var items = new List<(Node, Node)>();
                while (!Is(TokenType.CloseCurlyBracket))
                {
                    var key = ParseExpression();
                    Expect(TokenType.Colon, "':'");
                    items.Add((key, ParseExpression()));
                    if (!Is(TokenType.CloseCurlyBracket))
                        Expect(TokenType.Comma, "','");
                }
                _current++;
                _depth--;
                return new DictNode(items, token.Position);
            }
            default:
                throw _error(token.Position, $"Unexpected token '{token.Value}'");
        }
    }
}
