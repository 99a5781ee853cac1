import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { PassThrough } from 'node:stream'
import { bodyBytes, readBody, type ProxyBody } from '../../src/proxy/body.js'

/** A request body stream with the headers readBody looks at. */
function payload (headers: Record<string, string>): PassThrough & IncomingMessage {
  return Object.assign(new PassThrough(), { headers }) as unknown as PassThrough & IncomingMessage
}

const limits = { maxBodyBytes: 100, retryBufferBytes: 10 }

function read (stream: IncomingMessage): Promise<ProxyBody> {
  return new Promise((resolve, reject) => readBody(limits, stream, (err, body) => err === null ? resolve(body!) : reject(err)))
}

t.test('a small body with a length is held whole, however it arrives', async (t) => {
  const stream = payload({ 'content-length': '6' })
  const body = read(stream)
  stream.write('abc')
  stream.end('def')
  t.same(await body, Buffer.from('abcdef'))
  t.equal(bodyBytes(await body, '6'), 6)
})

t.test('a larger body with a length streams as it is; a chunked one through the cap', async (t) => {
  const large = payload({ 'content-length': '50' })
  const passed = await read(large)
  t.equal(passed, large)
  t.equal(bodyBytes(passed, '50'), 50)
  const chunked = payload({})
  const capped = await read(chunked)
  t.not(capped, chunked)
  chunked.end('0123456789abc')
  const out: Buffer[] = []
  for await (const chunk of capped as AsyncIterable<Buffer>) out.push(chunk)
  t.equal(Buffer.concat(out).toString(), '0123456789abc')
  t.equal(bodyBytes(capped, undefined), 13)
  t.equal(bodyBytes(undefined, undefined), 0)
})

t.test('over the cap: by its length at once, chunked once it passes', async (t) => {
  await t.rejects(read(payload({ 'content-length': '101' })), { code: 'PROXY_BODY_TOO_LARGE' })
  const chunked = payload({})
  const capped = await read(chunked) as PassThrough
  chunked.end(Buffer.alloc(150))
  await t.rejects(new Promise((resolve, reject) => capped.on('error', reject).on('end', resolve).resume()), { message: /larger than this proxy accepts \(100 bytes\)/ })
})

t.test('a caller gone mid-body fails the read', async (t) => {
  const stream = payload({ 'content-length': '6' })
  const body = read(stream)
  stream.destroy(new Error('aborted'))
  await t.rejects(body, { message: 'aborted' })
})
