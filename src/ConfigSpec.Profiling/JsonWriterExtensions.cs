using System.Text.Json;

namespace ConfigSpec.Profiling;

/// <summary>Utf8JsonWriter shorthands shared by the profile format and the command line's JSON output.</summary>
public static class JsonWriterExtensions
{
    public static void WriteArray<T>(this Utf8JsonWriter writer, string name, IEnumerable<T> values, Action<Utf8JsonWriter, T> item)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(item);
        writer.WriteStartArray(name);
        foreach (var value in values)
        {
            item(writer, value);
        }

        writer.WriteEndArray();
    }

    /// <summary>A number, or null when there is none.</summary>
    public static void WriteNumberOrNull(this Utf8JsonWriter writer, string name, double? value)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (value is { } v)
        {
            writer.WriteNumber(name, v);
        }
        else
        {
            writer.WriteNull(name);
        }
    }

    /// <summary>An array element: a number, or null when there is none.</summary>
    public static void WriteNumberOrNullValue(this Utf8JsonWriter writer, double? value)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (value is { } v)
        {
            writer.WriteNumberValue(v);
        }
        else
        {
            writer.WriteNullValue();
        }
    }
}
