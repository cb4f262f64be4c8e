using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace ConfigSpec.Edge.Cli;

/// <summary>Writes one JSON object to a command's output (Utf8JsonWriter: no reflection, AOT-clean).</summary>
internal static class JsonOutput
{
    public static void Write(TextWriter output, Action<Utf8JsonWriter> body, bool indented = false)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = indented, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }

        output.WriteLine(Encoding.UTF8.GetString(stream.ToArray()));
    }

}
