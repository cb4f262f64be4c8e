using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Transport.Protocol;

namespace ConfigSpec.Tests.Transport;

public class ProtocolCodecTests
{
    private static readonly ProtocolMessage[] Samples =
    [
        new OpenSessionMessage("stories260K", "pi5-kitchen", new string('a', 64), new SamplingSettings(0.8f, 40, ulong.MaxValue - 3), [1, 403, 9, 0, 511]),
        new SessionOpenedMessage("s42", "verifier-a1b2", 512, 512),
        new VerifyMessage("s42", 7, 130, [5, 6, -3, 700], null),
        new VerifyMessage("s42", 8, 135, [5, 6], [new SparseDistribution([5, 9], [0.75f, 0.25f]), new SparseDistribution([6], [1f])]),
        new VerifyResultMessage("s42", 7, 3, 17, 120, 2_500),
        new ErrorMessage(ProtocolErrorCode.SessionEvicted, "session s42 was evicted; re-open", "s42"),
        new CloseSessionMessage("s42"),
    ];

    [Fact]
    public void Every_message_round_trips()
    {
        foreach (var message in Samples)
        {
            var decoded = ProtocolCodec.Decode(ProtocolCodec.Encode(message));
            Assert.Equal(message.Type, decoded.Type);
            switch (message)
            {
                case VerifyMessage v:
                    var d = Assert.IsType<VerifyMessage>(decoded);
                    Assert.Equal((v.SessionId, v.Round, v.Position), (d.SessionId, d.Round, d.Position));
                    Assert.Equal(v.DraftTokens, d.DraftTokens);
                    Assert.Equal(v.DraftDistributions?.Select(q => q.Tokens), d.DraftDistributions?.Select(q => q.Tokens));
                    Assert.Equal(v.DraftDistributions?.Select(q => q.Probabilities), d.DraftDistributions?.Select(q => q.Probabilities));
                    break;
                case OpenSessionMessage o:
                    var e = Assert.IsType<OpenSessionMessage>(decoded);
                    Assert.Equal(o.PromptTokens, e.PromptTokens);
                    Assert.Equal(o.Sampling, e.Sampling);
                    Assert.Equal((o.TargetId, o.DeviceId, o.VocabularyFingerprint), (e.TargetId, e.DeviceId, e.VocabularyFingerprint));
                    break;
                default:
                    Assert.Equal(message, decoded);
                    break;
            }
        }
    }

    [Fact]
    public void Negative_and_out_of_range_token_ids_survive_decoding_so_the_verifier_can_name_them()
    {
        var decoded = Assert.IsType<VerifyMessage>(ProtocolCodec.Decode(ProtocolCodec.Encode(Samples[2])));
        Assert.Equal([5, 6, -3, 700], decoded.DraftTokens);
    }

    [Fact]
    public void Every_truncation_is_refused_as_malformed()
    {
        foreach (var message in Samples)
        {
            var bytes = ProtocolCodec.Encode(message);
            for (var length = 0; length < bytes.Length; length++)
            {
                var ex = Assert.Throws<ProtocolException>(() => ProtocolCodec.Decode(bytes.AsSpan(0, length)));
                Assert.Equal(ProtocolErrorCode.Malformed, ex.Code);
            }
        }
    }

    [Fact]
    public void Random_bytes_only_ever_give_protocol_errors()
    {
        var random = new Random(1234);
        for (var i = 0; i < 20_000; i++)
        {
            var bytes = new byte[random.Next(0, 96)];
            random.NextBytes(bytes);
            if (bytes.Length >= 4 && i % 2 == 0)
            {
                // Half the cases carry a valid header so the body parser is exercised.
                bytes[0] = (byte)'C';
                bytes[1] = (byte)'S';
                bytes[2] = ProtocolCodec.Version;
                bytes[3] = (byte)random.Next(1, 8);
            }

            try
            {
                ProtocolCodec.Decode(bytes);
            }
            catch (ProtocolException)
            {
            }
        }
    }

    [Fact]
    public void Wrong_schema_version_and_oversize_payloads_have_their_own_codes()
    {
        var bytes = ProtocolCodec.Encode(Samples[1]);
        bytes[2] = 9;
        Assert.Equal(ProtocolErrorCode.UnsupportedVersion, Assert.Throws<ProtocolException>(() => ProtocolCodec.Decode(bytes)).Code);

        var huge = new byte[ProtocolCodec.MaxPayloadBytes + 1];
        Assert.Equal(ProtocolErrorCode.Oversize, Assert.Throws<ProtocolException>(() => ProtocolCodec.Decode(huge)).Code);

        var longDraft = new VerifyMessage("s", 1, 1, new int[ProtocolCodec.MaxDraftTokens + 1], null);
        Assert.Equal(ProtocolErrorCode.Oversize, Assert.Throws<ProtocolException>(() => ProtocolCodec.Decode(ProtocolCodec.Encode(longDraft))).Code);

        var trailing = ProtocolCodec.Encode(Samples[6]).Append((byte)0).ToArray();
        Assert.Contains("trailing", Assert.Throws<ProtocolException>(() => ProtocolCodec.Decode(trailing)).Message, StringComparison.Ordinal);
    }
}
