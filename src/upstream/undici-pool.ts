// undici's index loads all of undici (fetch, WebSocket, EventSource, caches,
// mocks, proxies): some 50 ms of CPU at every start on a 2-core VM, before the
// sidecar can fetch its first token. The token request needs a Pool and its
// request() method: this loads those parts of undici, and gives dispatchers
// their request API the way undici's own index.js does (Object.assign onto
// Dispatcher.prototype). test/upstream and test/lean.e2e.ts cover both.
import Dispatcher from 'undici/lib/dispatcher/dispatcher.js'
import Pool from 'undici/lib/dispatcher/pool.js'
import api from 'undici/lib/api/index.js'

Object.assign(Dispatcher.prototype, api)

export { Pool }
