using System.Diagnostics;
using System.Globalization;
using System.Text;
using AgentHost.Llama;

namespace AgentHost.Extensions.AI.Jinja;

internal sealed class JinjaScope(JinjaScope? parent)
{
    private readonly Dictionary<string, object?> _vars = new(StringComparer.Ordinal);
    public JinjaScope? Parent { get; } = parent;

    public object? Lookup(string name)
    {
        for (var s = this; s is not null; s = s.Parent)
        {
            if (s._vars.TryGetValue(name, out var v))
                return v;
        }
        return Undefined.Value;
    }

    public void Set(string name, object? value) => _vars[name] = value;
}

internal sealed class JinjaRuntimeError(string message) : Exception(message);

internal sealed class BreakSignal : Exception;

internal sealed class ContinueSignal : Exception;

/// <summary>Walks the tree; every value that reaches the output keeps its content flags.</summary>
internal sealed partial class JinjaInterpreter
{
    private readonly string _name;
    private readonly JinjaLimits _limits;
    private readonly long _deadline;
    private readonly DateTimeOffset _now;
    private long _iterations;
    private int _callDepth;

    public JinjaInterpreter(string name, JinjaLimits limits, DateTimeOffset now)
    {
        _name = name;
        _limits = limits;
        _now = now;
        _deadline = Stopwatch.GetTimestamp() + (long)(limits.RenderTimeout.TotalSeconds * Stopwatch.Frequency);
    }

    private AgentHostException Limit(string what) =>
        new(ErrorKind.InvalidArgument, $"Chat template '{_name}' broke a limit: {what}.");

    private void Tick()
    {
        if (++_iterations > _limits.MaxIterations)
            throw Limit($"more than {_limits.MaxIterations} loop iterations (JinjaLimits.MaxIterations)");
        if ((_iterations & 63) == 0)
            CheckDeadline();
    }

    private void CheckDeadline()
    {
        if (Stopwatch.GetTimestamp() > _deadline)
            throw Limit($"rendering took longer than {_limits.RenderTimeout.TotalSeconds:0.###} s (JinjaLimits.RenderTimeout)");
    }

    private JinjaString CheckLength(JinjaString s)
    {
        if (s.Length > _limits.MaxOutputLength)
            throw Limit($"a string or the output grew beyond {_limits.MaxOutputLength} characters (JinjaLimits.MaxOutputLength)");
        return s;
    }

    public void SetupGlobals(JinjaScope scope)
    {
        scope.Set("raise_exception", (JinjaFunction)((args, _) =>
            throw new JinjaRaiseException(_name, args.Count > 0 ? JinjaValues.Raw(args[0]).Text : "raise_exception")));
        scope.Set("range", (JinjaFunction)((args, _) => Range(args)));
        scope.Set("strftime_now", (JinjaFunction)((args, _) => JinjaString.Markup(Strftime(_now, args.Count > 0 && args[0] is JinjaString f ? f.Text : throw new JinjaRuntimeError("strftime_now expects a format string")))));
        scope.Set("namespace", (JinjaFunction)((args, kwargs) =>
        {
            var ns = new JinjaDict(isNamespace: true);
            foreach (var arg in args)
            {
                if (arg is JinjaDict d)
                {
                    foreach (var (k, v) in d.Items)
                        ns.Items[k] = v;
                }
                else if (arg is JinjaList l)
                {
                    foreach (var pair in l.Items)
                    {
                        if (pair is JinjaList { Items.Count: 2 } p && p.Items[0] is JinjaString key)
                            ns.Items[key.Text] = p.Items[1];
                        else
                            throw new JinjaRuntimeError("namespace() expects pairs of [key, value]");
                    }
                }
                else
                {
                    throw new JinjaRuntimeError("namespace() expects a mapping or keyword arguments");
                }
            }
            foreach (var (k, v) in kwargs)
                ns.Items[k] = v;
            return ns;
        }));
        scope.Set("dict", (JinjaFunction)((args, kwargs) =>
        {
            var d = new JinjaDict();
            if (args.Count > 0 && args[0] is JinjaDict source)
            {
                foreach (var (k, v) in source.Items)
                    d.Items[k] = v;
            }
            foreach (var (k, v) in kwargs)
                d.Items[k] = v;
            return d;
        }));
    }

    private object? Range(List<object?> args)
    {
        if (args.Count is 0 or > 3 || args.Any(a => a is not long))
            throw new JinjaRuntimeError("range() expects one to three integers");
        long start = 0, stop, step = 1;
        if (args.Count == 1)
        {
            stop = (long)args[0]!;
        }
        else
        {
            start = (long)args[0]!;
            stop = (long)args[1]!;
            if (args.Count == 3)
                step = (long)args[2]!;
        }
        if (step == 0)
            throw new JinjaRuntimeError("range() step must not be zero");
        var items = new List<object?>();
        for (var i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            Tick();
            items.Add(i);
        }
        return new JinjaList(items);
    }

    internal static string Strftime(DateTimeOffset now, string format)
    {
        var b = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] == '%' && i + 1 < format.Length)
            {
                var c = format[i + 1];
                string? piece = c switch
                {
                    'Y' => now.Year.ToString(CultureInfo.InvariantCulture),
                    'm' => now.Month.ToString("00", CultureInfo.InvariantCulture),
                    'd' => now.Day.ToString("00", CultureInfo.InvariantCulture),
                    'b' => CultureInfo.InvariantCulture.DateTimeFormat.GetAbbreviatedMonthName(now.Month),
                    'B' => CultureInfo.InvariantCulture.DateTimeFormat.GetMonthName(now.Month),
                    'H' => now.Hour.ToString("00", CultureInfo.InvariantCulture),
                    'M' => now.Minute.ToString("00", CultureInfo.InvariantCulture),
                    '%' => "%",
                    _ => null,
                };
                if (piece is not null)
                {
                    b.Append(piece);
                    i++;
                    continue;
                }
            }
            b.Append(format[i]);
        }
        return b.ToString();
    }

    public void RenderBlock(List<Node> body, JinjaScope scope, JinjaStringBuilder output)
    {
        foreach (var node in body)
        {
            switch (node)
            {
                case TextNode text:
                    if (text.Text.Length > 0)
                        Append(output, JinjaString.Markup(text.Text));
                    break;
                case OutputNode o:
                {
                    var value = Eval(o.Expression, scope);
                    if (value is not (null or Undefined))
                        Append(output, JinjaValues.Print(value));
                    break;
                }
                case IfNode n:
                    RenderBlock(JinjaValues.Truthy(Eval(n.Test, scope)) ? n.Body : n.Else, scope, output);
                    break;
                case ForNode n:
                    RenderFor(n, scope, output);
                    break;
                case SetNode n:
                    ExecuteSet(n, scope);
                    break;
                case MacroNode n:
                    scope.Set(n.Name, MakeMacro(n.Parameters, n.Body, scope, n.Name));
                    break;
                case CallBlockNode n:
                {
                    var call = (CallNode)n.Call;
                    var caller = MakeMacro(n.CallerParameters, n.Body, scope, "caller");
                    var callee = Eval(call.Callee, scope);
                    var (args, kwargs) = EvalArgs(call.Args, call.Kwargs, scope);
                    kwargs["caller"] = caller;
                    var value = Invoke(callee, args, kwargs);
                    if (value is not (null or Undefined))
                        Append(output, JinjaValues.Print(value));
                    break;
                }
                case FilterBlockNode n:
                {
                    var inner = new JinjaStringBuilder();
                    RenderBlock(n.Body, scope, inner);
                    var f = (FilterNode)n.Filter;
                    var (args, kwargs) = EvalArgs(f.Args, f.Kwargs, scope);
                    var value = ApplyFilter(f.Name, inner.ToJinjaString(), args, kwargs, scope);
                    if (value is not (null or Undefined))
                        Append(output, JinjaValues.Print(value));
                    break;
                }
                case BreakNode:
                    throw new BreakSignal();
                case ContinueNode:
                    throw new ContinueSignal();
                default:
                    throw new JinjaRuntimeError($"Unknown node {node.GetType().Name}");
            }
        }
    }

    private void Append(JinjaStringBuilder output, JinjaString value)
    {
        if (output.Length + value.Length > _limits.MaxOutputLength)
            throw Limit($"the output grew beyond {_limits.MaxOutputLength} characters (JinjaLimits.MaxOutputLength)");
        output.Append(value);
    }

    private void RenderFor(ForNode n, JinjaScope scope, JinjaStringBuilder output)
    {
        var iterable = Eval(n.Iterable, scope);
        List<object?> items = iterable switch
        {
            JinjaList l => l.Items,
            JinjaDict d when !d.IsNamespace => d.Items.Keys.Select(k => (object?)JinjaString.Markup(k)).ToList(),
            JinjaString s => Enumerable.Range(0, s.Length).Select(i => (object?)s.Substring(i, 1)).ToList(),
            _ => throw new JinjaRuntimeError($"Expected iterable or object type in for loop: got {JinjaValues.TypeName(iterable)}"),
        };
        if (iterable is JinjaDict dict)
            items = dict.Items.Keys.Select(k => (object?)JinjaString.Markup(k)).ToList();

        if (n.Filter is not null)
        {
            var filtered = new List<object?>();
            foreach (var item in items)
            {
                Tick();
                var s = new JinjaScope(scope);
                Assign(n.Target, item, s);
                if (JinjaValues.Truthy(Eval(n.Filter, s)))
                    filtered.Add(item);
            }
            items = filtered;
        }

        if (items.Count == 0)
        {
            RenderBlock(n.Else, scope, output);
            return;
        }

        var snapshot = items.ToList();
        for (var i = 0; i < snapshot.Count; i++)
        {
            Tick();
            var s = new JinjaScope(scope);
            var loop = new JinjaDict();
            loop.Items["index"] = (long)(i + 1);
            loop.Items["index0"] = (long)i;
            loop.Items["revindex"] = (long)(snapshot.Count - i);
            loop.Items["revindex0"] = (long)(snapshot.Count - i - 1);
            loop.Items["first"] = i == 0;
            loop.Items["last"] = i == snapshot.Count - 1;
            loop.Items["length"] = (long)snapshot.Count;
            loop.Items["previtem"] = i > 0 ? snapshot[i - 1] : Undefined.Value;
            loop.Items["nextitem"] = i < snapshot.Count - 1 ? snapshot[i + 1] : Undefined.Value;
            var index = i;
            loop.Items["cycle"] = (JinjaFunction)((args, _) => args.Count == 0 ? Undefined.Value : args[index % args.Count]);
            s.Set("loop", loop);
            Assign(n.Target, snapshot[i], s);
            try
            {
                RenderBlock(n.Body, s, output);
            }
            catch (BreakSignal)
            {
                break;
            }
            catch (ContinueSignal)
            {
            }
        }
    }

    private void Assign(Node target, object? value, JinjaScope scope)
    {
        switch (target)
        {
            case NameNode name:
                scope.Set(name.Name, value);
                break;
            case ListNode list:
            {
                if (value is not JinjaList items)
                    throw new JinjaRuntimeError($"Cannot unpack non-iterable type: {JinjaValues.TypeName(value)}");
                if (items.Items.Count != list.Items.Count)
                    throw new JinjaRuntimeError($"Too {(items.Items.Count > list.Items.Count ? "many" : "few")} items to unpack");
                for (var i = 0; i < list.Items.Count; i++)
                    Assign(list.Items[i], items.Items[i], scope);
                break;
            }
            case MemberNode { Computed: false, Property: LiteralNode { Value: string attr } } member:
            {
                var obj = Eval(member.Object, scope);
                if (obj is not JinjaDict d)
                    throw new JinjaRuntimeError($"Cannot assign to an attribute of {JinjaValues.TypeName(obj)}");
                d.Items[attr] = value;
                break;
            }
            default:
                throw new JinjaRuntimeError("Invalid assignment target");
        }
    }

    private void ExecuteSet(SetNode n, JinjaScope scope)
    {
        object? value;
        if (n.Value is not null)
        {
            value = Eval(n.Value, scope);
        }
        else
        {
            var inner = new JinjaStringBuilder();
            RenderBlock(n.Body!, scope, inner);
            value = inner.ToJinjaString();
        }
        Assign(n.Target, value, scope);
    }

    private JinjaFunction MakeMacro(List<(string Name, Node? Default)> parameters, List<Node> body, JinjaScope closure, string name) =>
        (args, kwargs) =>
        {
            if (++_callDepth > _limits.MaxCallDepth)
                throw Limit($"macro calls nest deeper than {_limits.MaxCallDepth} (JinjaLimits.MaxCallDepth)");
            CheckDeadline();
            try
            {
                var scope = new JinjaScope(closure);
                for (var i = 0; i < parameters.Count; i++)
                {
                    var (pname, pdefault) = parameters[i];
                    object? value;
                    if (i < args.Count)
                        value = args[i];
                    else if (kwargs.TryGetValue(pname, out var kv))
                        value = kv;
                    else if (pdefault is not null)
                        value = Eval(pdefault, scope);
                    else
                        value = Undefined.Value;
                    scope.Set(pname, value);
                }
                if (kwargs.TryGetValue("caller", out var caller))
                    scope.Set("caller", caller);
                var output = new JinjaStringBuilder();
                RenderBlock(body, scope, output);
                return output.ToJinjaString();
            }
            finally
            {
                _callDepth--;
            }
        };

    private object? Invoke(object? callee, List<object?> args, Dictionary<string, object?> kwargs)
    {
        if (callee is not JinjaFunction f)
            throw new JinjaRuntimeError($"Cannot call something that is not a function: got {JinjaValues.TypeName(callee)}");
        return f(args, kwargs);
    }

    private (List<object?>, Dictionary<string, object?>) EvalArgs(List<Node> args, List<(string Name, Node Value)> kwargs, JinjaScope scope)
    {
        var a = new List<object?>(args.Count);
        foreach (var arg in args)
            a.Add(Eval(arg, scope));
        var k = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in kwargs)
            k[name] = Eval(value, scope);
        return (a, k);
    }

    public object? Eval(Node node, JinjaScope scope)
    {
        switch (node)
        {
            case LiteralNode lit:
                return lit.Value;
            case NameNode name:
                return scope.Lookup(name.Name);
            case ListNode list:
                return new JinjaList(list.Items.Select(i => Eval(i, scope)).ToList(), list.IsTuple);
            case DictNode dict:
            {
                var d = new JinjaDict();
                foreach (var (k, v) in dict.Items)
                {
                    var key = Eval(k, scope);
                    d.Items[key is JinjaString s ? s.Text : JinjaValues.Raw(key).Text] = Eval(v, scope);
                }
                return d;
            }
            case MemberNode m:
                return EvalMember(m, scope);
            case CallNode call:
            {
                var (args, kwargs) = EvalArgs(call.Args, call.Kwargs, scope);
                var callee = Eval(call.Callee, scope);
                return Invoke(callee, args, kwargs);
            }
            case BinaryNode b:
                return EvalBinary(b, scope);
            case UnaryNode u:
            {
                var v = Eval(u.Operand, scope);
                return u.Op switch
                {
                    "not" => !JinjaValues.Truthy(v),
                    "-" => v switch
                    {
                        long l => -l,
                        double d => -d,
                        bool bo => bo ? -1L : 0L,
                        _ => throw new JinjaRuntimeError($"Cannot negate {JinjaValues.TypeName(v)}"),
                    },
                    _ => v switch
                    {
                        long or double => v,
                        bool bo => bo ? 1L : 0L,
                        _ => throw new JinjaRuntimeError($"Cannot apply unary + to {JinjaValues.TypeName(v)}"),
                    },
                };
            }
            case TernaryNode t:
                if (JinjaValues.Truthy(Eval(t.Test, scope)))
                    return Eval(t.Then, scope);
                return t.Else is null ? Undefined.Value : Eval(t.Else, scope);
            case FilterNode f:
            {
                var operand = Eval(f.Operand, scope);
                var (args, kwargs) = EvalArgs(f.Args, f.Kwargs, scope);
                return ApplyFilter(f.Name, operand, args, kwargs, scope);
            }
            case TestNode t:
            {
                var operand = Eval(t.Operand, scope);
                var args = t.Args.Select(a => Eval(a, scope)).ToList();
                var result = ApplyTest(t.Name, operand, args, scope);
                return t.Negate ? !result : result;
            }
            default:
                throw new JinjaRuntimeError($"Cannot evaluate {node.GetType().Name}");
        }
    }

    private object? EvalMember(MemberNode m, JinjaScope scope)
    {
        var obj = Eval(m.Object, scope);
        if (m.Property is SliceNode slice)
            return EvalSlice(obj, slice, scope);
        var property = m.Computed ? Eval(m.Property, scope) : m.Property is LiteralNode { Value: string s } ? JinjaString.Markup(s) : ((LiteralNode)m.Property).Value;
        switch (obj)
        {
            case JinjaDict d:
            {
                if (property is not JinjaString key)
                    throw new JinjaRuntimeError($"Cannot access property with non-string: got {JinjaValues.TypeName(property)}");
                if (d.Items.TryGetValue(key.Text, out var value))
                    return value;
                return d.IsNamespace ? Undefined.Value : DictMethod(d, key.Text);
            }
            case JinjaList list:
                if (property is long i)
                {
                    var index = i < 0 ? list.Items.Count + i : i;
                    return index >= 0 && index < list.Items.Count ? list.Items[(int)index] : Undefined.Value;
                }
                if (property is JinjaString name)
                    return name.Text == "length" ? (long)list.Items.Count : Undefined.Value;
                throw new JinjaRuntimeError($"Cannot access property with non-string/non-number: got {JinjaValues.TypeName(property)}");
            case JinjaString str:
                if (property is long ci)
                {
                    var index = ci < 0 ? str.Length + ci : ci;
                    return index >= 0 && index < str.Length ? str.Substring((int)index, 1) : Undefined.Value;
                }
                if (property is JinjaString method)
                    return StringMethod(str, method.Text);
                throw new JinjaRuntimeError($"Cannot access property with non-string/non-number: got {JinjaValues.TypeName(property)}");
            default:
                if (property is not JinjaString)
                    throw new JinjaRuntimeError($"Cannot access property with non-string: got {JinjaValues.TypeName(property)}");
                return Undefined.Value;
        }
    }

    private object? EvalSlice(object? obj, SliceNode slice, JinjaScope scope)
    {
        long? Get(Node? n)
        {
            if (n is null)
                return null;
            var v = Eval(n, scope);
            return v switch
            {
                long l => l,
                null or Undefined => null,
                _ => throw new JinjaRuntimeError("Slice indices must be integers"),
            };
        }
        var start = Get(slice.Start);
        var stop = Get(slice.Stop);
        var step = Get(slice.Step) ?? 1;
        if (step == 0)
            throw new JinjaRuntimeError("Slice step cannot be zero");
        var length = obj switch
        {
            JinjaList l => l.Items.Count,
            JinjaString s => s.Length,
            _ => throw new JinjaRuntimeError($"Cannot slice {JinjaValues.TypeName(obj)}"),
        };
        var indices = SliceIndices(length, start, stop, step);
        if (obj is JinjaList list)
            return new JinjaList(indices.Select(i => list.Items[i]).ToList());
        var str = (JinjaString)obj!;
        if (step == 1)
            return indices.Count == 0 ? JinjaString.Empty : str.Substring(indices[0], indices.Count);
        return str.Pick(indices);
    }

    private static List<int> SliceIndices(int length, long? startArg, long? stopArg, long step)
    {
        long start, stop;
        if (step > 0)
        {
            start = startArg is { } s ? (s < 0 ? Math.Max(length + s, 0) : Math.Min(s, length)) : 0;
            stop = stopArg is { } e ? (e < 0 ? Math.Max(length + e, 0) : Math.Min(e, length)) : length;
        }
        else
        {
            start = startArg is { } s ? (s < 0 ? Math.Max(length + s, -1) : Math.Min(s, length - 1)) : length - 1;
            stop = stopArg is { } e ? (e < -1 ? Math.Max(length + e, -1) : Math.Min(e, length - 1)) : -1;
        }
        var result = new List<int>();
        for (var i = start; step > 0 ? i < stop : i > stop; i += step)
            result.Add((int)i);
        return result;
    }

    private object? EvalBinary(BinaryNode b, JinjaScope scope)
    {
        var left = Eval(b.Left, scope);
        if (b.Op == "and")
            return JinjaValues.Truthy(left) ? Eval(b.Right, scope) : left;
        if (b.Op == "or")
            return JinjaValues.Truthy(left) ? left : Eval(b.Right, scope);
        var right = Eval(b.Right, scope);
        switch (b.Op)
        {
            case "==":
                return LooseEquals(left, right);
            case "!=":
                return !LooseEquals(left, right);
        }
        if (JinjaValues.IsNumber(left) && JinjaValues.IsNumber(right) && b.Op is not "~" and not "**")
        {
            var isFloat = left is double || right is double;
            var x = JinjaValues.ToDouble(left);
            var y = JinjaValues.ToDouble(right);
            switch (b.Op)
            {
                case "+": return isFloat ? x + y : (object)((long)left! + (long)right!);
                case "-": return isFloat ? x - y : (object)((long)left! - (long)right!);
                case "*": return isFloat ? x * y : (object)((long)left! * (long)right!);
                case "/": return x / y;
                case "//":
                {
                    var r = Math.Floor(x / y);
                    return isFloat ? r : (object)(long)r;
                }
                case "%":
                {
                    var r = x % y;
                    return isFloat ? r : (object)(long)r;
                }
                case "<": return x < y;
                case ">": return x > y;
                case ">=": return x >= y;
                case "<=": return x <= y;
            }
        }
        else if (left is Undefined || right is Undefined)
        {
            if (right is Undefined && b.Op is "in" or "not in")
                return b.Op == "not in";
            if (b.Op == "~" && left is not null && right is not null)
                return CheckLength(JinjaString.Concat(left is Undefined ? JinjaString.Empty : JinjaValues.Raw(left), right is Undefined ? JinjaString.Empty : JinjaValues.Raw(right)));
            throw new JinjaRuntimeError($"Cannot perform operation {b.Op} on undefined values");
        }
        else if (left is null || right is null)
        {
            throw new JinjaRuntimeError("Cannot perform operation on null values");
        }
        else if (b.Op == "~")
        {
            return CheckLength(JinjaString.Concat(JinjaValues.Raw(left), JinjaValues.Raw(right)));
        }
        else if (b.Op == "**" && left is long or double or bool && right is long or double or bool)
        {
            var x = JinjaValues.ToDouble(left);
            var y = JinjaValues.ToDouble(right);
            var r = Math.Pow(x, y);
            if (!double.IsFinite(r))
                throw new JinjaRuntimeError("Exponentiation result is not a finite real number");
            return left is double || right is double || y < 0 ? r : (object)(long)r;
        }
        else if (left is JinjaList la && right is JinjaList lb && b.Op == "+")
        {
            Tick();
            return new JinjaList([.. la.Items, .. lb.Items]);
        }
        else if (right is JinjaList members && b.Op is "in" or "not in")
        {
            var found = members.Items.Any(x => StrictEquals(x, left));
            return b.Op == "in" ? found : !found;
        }

        if ((left is JinjaString || right is JinjaString) && b.Op == "+")
            return CheckLength(JinjaString.Concat(JinjaValues.Raw(left), JinjaValues.Raw(right)));
        if (left is JinjaString ls && right is JinjaString rs && b.Op is "in" or "not in")
        {
            var found = rs.Text.Contains(ls.Text, StringComparison.Ordinal);
            return b.Op == "in" ? found : !found;
        }
        if (left is JinjaString key && right is JinjaDict d && b.Op is "in" or "not in")
        {
            var found = d.Items.ContainsKey(key.Text);
            return b.Op == "in" ? found : !found;
        }
        throw new JinjaRuntimeError($"Unknown operator \"{b.Op}\" between {JinjaValues.TypeName(left)} and {JinjaValues.TypeName(right)}");
    }

    // JavaScript's === on the underlying values.
    private static bool StrictEquals(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (Undefined, Undefined) => true,
        (JinjaString x, JinjaString y) => x.Text == y.Text,
        (long or double, long or double) => JinjaValues.ToDouble(a) == JinjaValues.ToDouble(b),
        (bool x, bool y) => x == y,
        _ => ReferenceEquals(a, b),
    };

    // JavaScript's == on the underlying values (what the reference's == does).
    internal static bool LooseEquals(object? a, object? b)
    {
        if (a is null or Undefined || b is null or Undefined)
            return a is null or Undefined && b is null or Undefined;
        if (a is JinjaString x && b is JinjaString y)
            return x.Text == y.Text;
        if (a is long or double or bool && b is long or double or bool)
            return JinjaValues.ToDouble(a) == JinjaValues.ToDouble(b);
        if (a is JinjaString s1 && b is long or double or bool)
            return double.TryParse(s1.Text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var n1) ? n1 == JinjaValues.ToDouble(b) : s1.Text.Trim().Length == 0 && JinjaValues.ToDouble(b) == 0;
        if (b is JinjaString && a is long or double or bool)
            return LooseEquals(b, a);
        return ReferenceEquals(a, b);
    }
}

/// <summary>A template called <c>raise_exception(message)</c>: the conversation is one the template refuses.</summary>
public sealed class JinjaRaiseException : Exception
{
    /// <summary>Creates the exception.</summary>
    public JinjaRaiseException(string templateName, string message)
        : base($"Chat template '{templateName}' raised: {message}")
    {
        TemplateName = templateName;
        TemplateMessage = message;
    }

    /// <summary>The template's name.</summary>
    public string TemplateName { get; }

    /// <summary>The message the template passed to <c>raise_exception</c>.</summary>
    public string TemplateMessage { get; }
}
