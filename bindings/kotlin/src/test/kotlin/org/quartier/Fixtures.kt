package org.quartier

import uniffi.quartier_core.*
import uniffi.quartier_domain.*
import uniffi.quartier_ffi.*

/** Small builders so the tests read as the scenario, not as record plumbing. */
object Fixtures {
    val berlinMeta = SpaceMeta(
        name = mapOf("de" to "Nordstadt", "en" to "North town"),
        timeZone = "Europe/Berlin",
        defaultLanguage = "de",
    )

    fun content(title: String, details: ItemDetails, body: String = "", location: Location? = null, tags: List<String> = emptyList()) =
        ItemContent(
            title = mapOf("de" to title),
            body = if (body.isEmpty()) emptyMap() else mapOf("de" to body),
            tags = tags,
            location = location,
            audience = Audience.EVERYONE,
            status = Status.PUBLISHED,
            details = details,
        )

    fun post(space: String, author: String, title: String, body: String = "") =
        NewItem(space, author, content(title, ItemDetails.Post(Post(PostType.NEWS)), body))

    fun place(space: String, author: String, title: String, lat: Double, lon: Double) =
        NewItem(
            space, author,
            content(
                title,
                ItemDetails.Place(Place(category = "meeting", address = Address(street = "Hauptstraße 5", city = "Kassel", country = "DE"))),
                location = Location(lat = lat, lon = lon, source = PositionSource.MANUAL),
            ),
        )

    fun offer(space: String, author: String, title: String) =
        NewItem(
            space, author,
            content(
                title,
                ItemDetails.Offer(
                    Offer(
                        organization = Organization(name = "Caritas Kassel"),
                        category = "food",
                        schedules = listOf(OpeningRule(rrule = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", opens = "09:00", closes = "17:00")),
                    ),
                ),
                body = "Lebensmittelausgabe für alle",
            ),
        )

    fun event(space: String, author: String, title: String) =
        NewItem(
            space, author,
            content(
                title,
                ItemDetails.Event(Event(EventTiming(start = "2030-05-01T15:00", end = "2030-05-01T17:00", timeZone = "Europe/Berlin"), venue = "Stadtteilzentrum")),
            ),
        )

    fun request(space: String, author: String, title: String) =
        NewItem(
            space, author,
            content(title, ItemDetails.Request(Request(RequestDirection.NEED, "shopping", RequestState.OPEN))),
        )
}
