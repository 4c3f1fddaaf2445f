package org.quartier

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.io.TempDir
import uniffi.quartier_core.*
import uniffi.quartier_domain.*
import uniffi.quartier_ffi.*
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Path
import java.time.DayOfWeek
import java.time.Duration
import java.time.LocalDate
import java.util.UUID
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

/**
 * Standards and the printed guide from Kotlin (docs/standards.md), as
 * `bindings/tests/python/test_standards.py`: GeoJSON, iCalendar, HSDS (JSON and tables) and vCard
 * out of one store and into another (a second import finds the offer `unchanged`, no duplicate),
 * bad files as `MalformedInput` that change nothing, the guide as PDF and HTML (a bad link
 * template `Invalid`), and a member's secret calendar feed fetched with Java's HttpClient from a
 * real server, gone (404) once ended.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class StandardsTest {
    private lateinit var server: ServerProcess

    @TempDir
    lateinit var dir: Path

    @BeforeAll
    fun startServer() {
        server = ServerProcess.start()
    }

    @AfterAll
    fun stopServer() {
        server.close()
    }

    private fun offer(space: String, author: String, title: String, phone: String) =
        NewItem(
            space, author,
            Fixtures.content(
                title,
                ItemDetails.Offer(
                    Offer(
                        organization = Organization(name = "Caritas Köln"),
                        schedules = listOf(OpeningRule(rrule = "FREQ=WEEKLY;BYDAY=MO,WE", opens = "10:00", closes = "12:00", validFrom = "2026-01-01")),
                        contacts = listOf(Contact(name = "Frau Yilmaz", phone = phone)),
                    ),
                ),
            ),
        )

    /** The `title:de` properties of a GeoJSON file's features, in order (no JSON library on the test classpath). */
    private fun geoTitles(geojson: ByteArray): List<String> =
        Regex("\"title:de\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"").findAll(geojson.decodeToString()).map { it.groupValues[1] }.toList()

    private fun ByteArray.startsWith(prefix: String) = size >= prefix.length && copyOfRange(0, prefix.length).contentEquals(prefix.encodeToByteArray())

    @Test
    fun `standards round trip between two stores, vCards, bad files, the printed guide`() {
        val me = UUID.randomUUID().toString()
        QuartierStore.open(dir.resolve("one.db").toString()).use { one ->
            QuartierStore.open(dir.resolve("two.db").toString()).use { two ->
                val spaceOne = one.createSpace(Fixtures.berlinMeta, me).id
                val spaceTwo = two.createSpace(Fixtures.berlinMeta, me).id
                one.createItem(offer(spaceOne, me, "Sozialberatung", "+49 221 555 0101"))
                one.createItem(
                    NewItem(
                        spaceOne, me,
                        Fixtures.content(
                            "Bücherschrank", ItemDetails.Place(Place(category = "books")),
                            location = Location(lat = 50.9612, lon = 6.9503, source = PositionSource.MANUAL),
                        ),
                    ),
                )
                val seen = Viewer(me, Role.COORDINATOR)

                val geo = one.exportGeojson(spaceOne)
                assertEquals(listOf("Bücherschrank"), geoTitles(geo.bytes), geo.bytes.decodeToString())
                val hsds = one.exportHsds(spaceOne, "de")
                val tables = one.exportHsdsTables(spaceOne, "de")
                assertTrue("services.csv" in tables.files && "datapackage.json" in tables.files, tables.files.keys.toString())
                val ics = one.exportIcalendar(spaceOne)
                assertTrue(ics.bytes.startsWith("BEGIN:VCALENDAR\r\n"), ics.bytes.decodeToString())
                assertTrue("Sozialberatung" in ics.bytes.decodeToString(), ics.bytes.decodeToString())

                val first = two.importHsds(spaceTwo, me, hsds.bytes, "de")
                assertEquals(1, first.created.size, first.toString())
                assertEquals(emptyList(), first.skipped)
                val again = two.importHsdsTables(spaceTwo, me, tables.files, "de")
                assertEquals(emptyList(), again.created, again.toString())
                assertEquals(first.created, again.unchanged, again.toString())
                assertEquals(1, two.importGeojson(spaceTwo, me, geo.bytes, "de").created.size)
                val copy = two.itemDetail(first.created.single(), seen).item
                assertEquals(mapOf("de" to "Sozialberatung"), copy.content.title)
                val details = copy.content.details
                check(details is ItemDetails.Offer) { "an offer: $details" }
                assertEquals("FREQ=WEEKLY;BYDAY=MO,WE", details.v1.schedules.first().rrule)

                val cards = two.offerVcards(first.created.single(), seen)
                val read = readVcards(cards.encodeToByteArray())
                assertEquals(listOf("+49 221 555 0101"), read.contacts.map { it.phone })

                val feed = FeedQuery(spaceTwo, seen)
                val before = two.feed(feed).items.size
                val notUtf8 = byteArrayOf(0xff.toByte(), 0xfe.toByte())
                for (bad in listOf(notUtf8, "{".encodeToByteArray(), "[".repeat(100_000).encodeToByteArray())) {
                    assertFailsWith<QuartierException.MalformedInput> { two.importGeojson(spaceTwo, me, bad, "de") }
                }
                assertFailsWith<QuartierException.MalformedInput> {
                    two.importIcalendar(spaceTwo, me, ("BEGIN:VCALENDAR\r\n" + "BEGIN:VEVENT\r\n".repeat(50)).encodeToByteArray(), "de")
                }
                assertEquals(before, two.feed(feed).items.size)

                val monday = LocalDate.now().with(DayOfWeek.MONDAY)
                val guide = two.makeGuide(
                    spaceTwo,
                    GuideSpec(
                        language = "de", firstDay = monday.toString(), lastDay = monday.plusDays(13).toString(),
                        linkTemplate = "https://quartier.example/i/{item}", paper = GuidePaper.A4_BOOKLET,
                        largePrint = false, easyLanguage = false,
                        phoneNumbers = listOf(GuidePhoneNumber(label = mapOf("de" to "Notruf"), number = "112")),
                    ),
                )
                assertContentEquals("%PDF".encodeToByteArray(), guide.pdf.copyOfRange(0, 4))
                assertTrue(guide.pages.toLong() >= 1, "pages: ${guide.pages}")
                assertEquals(1L, guide.offersPrinted.toLong())
                assertTrue("lang=\"de\"" in guide.html && "Sozialberatung" in guide.html, guide.html)
                assertFailsWith<QuartierException.Invalid> {
                    two.makeGuide(
                        spaceTwo,
                        GuideSpec(
                            language = "de", firstDay = monday.toString(), lastDay = monday.toString(),
                            linkTemplate = "ftp://nope", paper = GuidePaper.A3_POSTER,
                            largePrint = true, easyLanguage = false, phoneNumbers = emptyList(),
                        ),
                    )
                }
            }
        }
    }

    @Test
    fun `a calendar feed from a real server, gone once ended`() = runBlocking<Unit> {
        val store = QuartierStore.open(dir.resolve("coord.db").toString())
        val sync = QuartierSync(store, server.url)
        try {
            val me = sync.register("Koordination").personId
            val space = sync.createSpace(Fixtures.berlinMeta).space.id
            val start = LocalDate.now().plusDays(2)
            store.createItem(
                NewItem(
                    space, me,
                    Fixtures.content(
                        "Nachbarschaftscafé",
                        ItemDetails.Event(Event(EventTiming(start = "${start}T15:00:00", end = "${start}T17:00:00", timeZone = "Europe/Berlin"))),
                    ),
                ),
            )
            sync.syncNow()
            val url = sync.renewCalendarFeed(space)
            val http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(30)).build()
            fun get(): HttpResponse<String> =
                http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30)).GET().build(), HttpResponse.BodyHandlers.ofString())
            val feed = get()
            assertEquals(200, feed.statusCode(), feed.body())
            assertTrue(feed.body().startsWith("BEGIN:VCALENDAR") && "Nachbarschaftscaf" in feed.body(), feed.body())
            sync.endCalendarFeed(space)
            assertEquals(404, get().statusCode())
        } finally {
            sync.close()
            store.close()
        }
    }
}
