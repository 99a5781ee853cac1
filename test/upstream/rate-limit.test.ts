import t from 'tap'
import { firstHeader, listHeader } from '../../src/upstream/headers.js'
import { exhaustedQuota, lowQuotas, parseQuota, parseRateLimit, type Quota } from '../../src/upstream/rate-limit.js'

const hour = (remaining: number, scope: Quota['scope'] = 'client'): Quota => ({ scope, bucket: 'per_hour', limit: 10, remaining, resetSeconds: 3540 })
const day = (remaining: number, scope: Quota['scope'] = 'client'): Quota => ({ scope, bucket: 'per_day', limit: 50, remaining, resetSeconds: 43200 })

t.test('quota header: one bucket per comma-separated part, each with its own numbers', async (t) => {
  const cases: Array<[string, string | undefined, Array<Omit<Quota, 'scope'>>]> = [
    ['Auth0\'s documented form', 'b=per_hour;q=10;r=7;t=3540,b=per_day;q=50;r=47;t=43200', [
      { bucket: 'per_hour', limit: 10, remaining: 7, resetSeconds: 3540 },
      { bucket: 'per_day', limit: 50, remaining: 47, resetSeconds: 43200 }
    ]],
    ['one bucket', 'b=per_day;q=50;r=0;t=600', [{ bucket: 'per_day', limit: 50, remaining: 0, resetSeconds: 600 }]],
    ['spaces around everything', ' b = per_hour ; q = 10 ; r = 7 ; t = 3540 , b=per_day;q=50;r=47;t=43200 ', [
      { bucket: 'per_hour', limit: 10, remaining: 7, resetSeconds: 3540 },
      { bucket: 'per_day', limit: 50, remaining: 47, resetSeconds: 43200 }
    ]],
    ['fields in any order, keys in any case', 't=5;R=1;Q=2;B=per_hour', [{ bucket: 'per_hour', limit: 2, remaining: 1, resetSeconds: 5 }]],
    ['an unknown bucket name is kept', 'b=per_minute;q=5;r=4;t=59,b=per_week;q=900;r=899;t=604800', [
      { bucket: 'per_minute', limit: 5, remaining: 4, resetSeconds: 59 },
      { bucket: 'per_week', limit: 900, remaining: 899, resetSeconds: 604800 }
    ]],
    ['a bare first field names the bucket (the SDKs\' test form)', 'per_hour;q=100;r=50;t=3600,per_day;q=1000;r=500;t=86400', [
      { bucket: 'per_hour', limit: 100, remaining: 50, resetSeconds: 3600 },
      { bucket: 'per_day', limit: 1000, remaining: 500, resetSeconds: 86400 }
    ]],
    ['no name at all', 'q=100;r=50;t=3600', [{ bucket: 'unspecified', limit: 100, remaining: 50, resetSeconds: 3600 }]],
    ['a malformed part is skipped, the others kept', 'b=per_hour;q=10;r=x;t=3540,b=per_day;q=50;r=47;t=43200', [
      { bucket: 'per_day', limit: 50, remaining: 47, resetSeconds: 43200 }
    ]],
    ['a part missing a number is skipped', 'b=per_hour;q=10;r=7,b=per_day;q=50;r=47;t=43200', [
      { bucket: 'per_day', limit: 50, remaining: 47, resetSeconds: 43200 }
    ]],
    ['negative, fractional and absurd numbers are skipped', 'b=a;q=-1;r=0;t=1,b=b;q=1.5;r=0;t=1,b=c;q=1;r=0;t=1e3,b=d;q=9999999999999999;r=0;t=1', []],
    ['a name that is no plain name is skipped', 'b=per hour;q=1;r=1;t=1,b=<script>;q=1;r=1;t=1,b=;q=1;r=1;t=1', []],
    ['empty parts and stray separators', ',,b=per_hour;q=10;r=7;t=3540;;,', [{ bucket: 'per_hour', limit: 10, remaining: 7, resetSeconds: 3540 }]],
    ['garbage', 'garbage', []],
    ['empty', '', []],
    ['absent', undefined, []]
  ]
  for (const [name, value, expected] of cases) {
    t.same(parseQuota(value, 'client'), expected.map((q) => ({ scope: 'client', ...q })), name)
  }
})

t.test('both quota headers, names in any case, a repeated header read as one list', async (t) => {
  const info = parseRateLimit({
    'Auth0-Client-Quota-Limit': 'b=per_hour;q=10;r=7;t=3540,b=per_day;q=50;r=47;t=43200',
    'AUTH0-ORGANIZATION-QUOTA-LIMIT': ['b=per_hour;q=100;r=90;t=3540', 'b=per_day;q=1000;r=990;t=43200']
  })
  t.same(info.quotas, [
    { scope: 'client', bucket: 'per_hour', limit: 10, remaining: 7, resetSeconds: 3540 },
    { scope: 'client', bucket: 'per_day', limit: 50, remaining: 47, resetSeconds: 43200 },
    { scope: 'organization', bucket: 'per_hour', limit: 100, remaining: 90, resetSeconds: 3540 },
    { scope: 'organization', bucket: 'per_day', limit: 1000, remaining: 990, resetSeconds: 43200 }
  ])
  t.same(parseRateLimit({ 'auth0-tenant-quota-limit': 'b=per_day;q=1000;r=0;t=1' }), { quotas: [] }, 'no header of that name is documented: not read')
})

t.test('rate-limit headers', async (t) => {
  t.same(parseRateLimit({}), { quotas: [] })
  t.same(parseRateLimit({ 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '3' }), { quotas: [] }, 'incomplete: ignored')
  t.same(parseRateLimit({ 'x-ratelimit-limit': ['10', '11'], 'x-ratelimit-remaining': ' 3 ', 'x-ratelimit-reset': '5' }), { rateLimit: { limit: 10, remaining: 3, resetEpochSeconds: 5 }, quotas: [] }, 'a repeat: the first counts')
  t.same(parseRateLimit({ 'X-RateLimit-Limit': '10', 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': '5' }).rateLimit, { limit: 10, remaining: 0, resetEpochSeconds: 5 }, 'any case')
  t.same(parseRateLimit({ 'x-ratelimit-limit': 'ten', 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '5' }), { quotas: [] })
})

t.test('the header helper: any case, first value or the whole list', async (t) => {
  const headers = { 'retry-after': ['3', '9'], 'Retry-After': '4', other: undefined }
  t.equal(firstHeader(headers, 'RETRY-AFTER'), '3')
  t.equal(listHeader(headers, 'retry-after'), '3,9,4')
  t.equal(firstHeader(headers, 'other'), undefined)
  t.equal(listHeader(headers, 'missing'), undefined)
  t.equal(firstHeader({ 'x-a': [] }, 'x-a'), undefined)
})

t.test('a quota 429 waits for the spent bucket of the scope it names, the latest to reset', async (t) => {
  const cases: Array<[string, Quota[], string, Quota | undefined]> = [
    ['client quota, hourly spent', [hour(0), day(40)], 'too_many_requests Client quota exceeded', hour(0)],
    ['client quota, both spent: the day outlasts the hour', [hour(0), day(0)], 'Client quota exceeded', day(0)],
    ['organization quota', [hour(5), day(40), hour(0, 'organization'), day(3, 'organization')], 'Organization quota exceeded', hour(0, 'organization')],
    ['organisation spelt the British way', [hour(0, 'organization')], 'organisation quota exceeded', hour(0, 'organization')],
    ['the client is named, only the organization is spent', [hour(0, 'organization')], 'Client quota exceeded', undefined],
    ['no scope named: any spent bucket', [hour(3), day(0, 'organization')], 'quota exceeded', day(0, 'organization')],
    ['nothing spent (counted late)', [hour(1), day(9)], 'Client quota exceeded', undefined],
    ['not about a quota', [hour(0)], 'too_many_requests Global limit has been reached', undefined],
    ['no quota headers', [], 'Client quota exceeded', undefined]
  ]
  for (const [name, quotas, said, expected] of cases) t.same(exhaustedQuota(quotas, said), expected, name)
})

t.test('low limits: below 10 % left, each bucket named', async (t) => {
  t.same(lowQuotas({ quotas: [] }), [])
  t.same(lowQuotas({ rateLimit: { limit: 10, remaining: 1, resetEpochSeconds: 0 }, quotas: [] }), [], 'exactly 10 % is not low')
  t.same(lowQuotas({ rateLimit: { limit: 11, remaining: 1, resetEpochSeconds: 0 }, quotas: [] }), [{ scope: 'rate_limit', remaining: 1, limit: 11 }])
  t.same(lowQuotas({ quotas: [hour(0), day(47), { scope: 'organization', bucket: 'per_day', limit: 1000, remaining: 99, resetSeconds: 60 }] }), [
    { scope: 'client_quota', bucket: 'per_hour', remaining: 0, limit: 10, reset_seconds: 3540 },
    { scope: 'organization_quota', bucket: 'per_day', remaining: 99, limit: 1000, reset_seconds: 60 }
  ])
})
