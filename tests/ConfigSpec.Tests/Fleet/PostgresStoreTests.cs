using ConfigSpec.Aggregator.Storage;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Fleet;

/// <summary>The aggregator's store against a real PostgreSQL (the same scenarios as on SQLite).</summary>
public sealed class PostgresStoreTests(PostgresServer postgres) : IClassFixture<PostgresServer>
{
    [Fact]
    public Task Each_message_is_stored_once_and_survives_a_restart() => AggregatorStoreTests.StoredOnceAcrossRestart(postgres.NewDatabase());

    [Fact]
    public Task Older_messages_do_not_replace_newer_ones_and_the_last_will_marks_offline() => AggregatorStoreTests.NewerWins(postgres.NewDatabase());

    [Fact]
    public Task Malformed_messages_are_counted_by_reason_and_never_stored() => AggregatorStoreTests.MalformedCounted(postgres.NewDatabase());

    [Fact]
    public void A_connection_string_selects_postgres_and_migrations_are_recorded()
    {
        var db = postgres.NewDatabase();
        Assert.True(FleetStore.IsPostgres(db));
        Assert.False(FleetStore.IsPostgres("/var/lib/configspec-aggregator/fleet.db"));
        using (var store = new FleetStore(db))
        {
            Assert.True(store.IsPostgresStore);
            Assert.Equal(FleetStore.LatestSchemaVersion, store.SchemaVersion);
            Assert.DoesNotContain("Password", store.Description, StringComparison.OrdinalIgnoreCase);
        }

        using var again = new FleetStore(db); // migrations are not applied twice
        Assert.Equal(FleetStore.LatestSchemaVersion, again.SchemaVersion);
        var unreachable = $"Host=127.0.0.1;Port={MosquittoBroker.FreePort()};Username=configspec;Database=x;Timeout=2";
        Assert.Contains("cannot open the database", Assert.Throws<ConfigSpec.ConfigSpecException>(() => new FleetStore(unreachable)).Message, StringComparison.Ordinal);
    }
}
