// NOT the Paging library: compile-time stand-ins for the part of androidx.paging's API that
// android/src/main/kotlin uses, because the library's JVM classes are not on Maven Central (only
// Google's Maven repository, which this machine cannot reach). Signatures follow Paging 3.3's
// public API (PagingSource, LoadParams, LoadResult, PagingState); bodies are not used. Only the
// verify build (pom.xml beside this folder) compiles them; the AAR uses the real library.
package androidx.paging

abstract class PagingSource<Key : Any, Value : Any> {
    sealed class LoadParams<Key : Any>(val loadSize: Int, val placeholdersEnabled: Boolean) {
        abstract val key: Key?

        class Refresh<Key : Any>(override val key: Key?, loadSize: Int, placeholdersEnabled: Boolean) :
            LoadParams<Key>(loadSize, placeholdersEnabled)

        class Append<Key : Any>(override val key: Key, loadSize: Int, placeholdersEnabled: Boolean) :
            LoadParams<Key>(loadSize, placeholdersEnabled)

        class Prepend<Key : Any>(override val key: Key, loadSize: Int, placeholdersEnabled: Boolean) :
            LoadParams<Key>(loadSize, placeholdersEnabled)
    }

    sealed class LoadResult<Key : Any, Value : Any> {
        data class Error<Key : Any, Value : Any>(val throwable: Throwable) : LoadResult<Key, Value>()

        class Invalid<Key : Any, Value : Any> : LoadResult<Key, Value>()

        data class Page<Key : Any, Value : Any>(
            val data: List<Value>,
            val prevKey: Key?,
            val nextKey: Key?,
            val itemsBefore: Int = COUNT_UNDEFINED,
            val itemsAfter: Int = COUNT_UNDEFINED,
        ) : LoadResult<Key, Value>() {
            companion object {
                const val COUNT_UNDEFINED: Int = Int.MIN_VALUE
            }
        }
    }

    open val jumpingSupported: Boolean get() = false
    open val keyReuseSupported: Boolean get() = false
    val invalid: Boolean get() = throw UnsupportedOperationException("stub")

    fun invalidate(): Unit = throw UnsupportedOperationException("stub")
    fun registerInvalidatedCallback(onInvalidatedCallback: () -> Unit): Unit = throw UnsupportedOperationException("stub")
    fun unregisterInvalidatedCallback(onInvalidatedCallback: () -> Unit): Unit = throw UnsupportedOperationException("stub")

    abstract suspend fun load(params: LoadParams<Key>): LoadResult<Key, Value>
    abstract fun getRefreshKey(state: PagingState<Key, Value>): Key?
}

class PagingState<Key : Any, Value : Any>
