import Foundation

/// The OpenAPI 3 description of every route ``WebRoutes`` serves, served at
/// `/openapi.yaml`. A test compares its paths and methods with the router's.
package enum OpenAPIDocument {
    package static let yaml = """
        openapi: 3.0.3
        info:
          title: Kindred
          version: "1.0"
          description: >-
            Precomputed compatibility matches. Every /v1 route needs
            `Authorization: Bearer TOKEN`. Errors are {"error": {"code", "message"}}, the
            message naming the problem (the parameter, the field). Member ids are integers
            from 1 to 4294967295. A path no route has is 404; a route's path asked with a
            method it does not answer is 405 with an `Allow` header listing the ones it
            does; OPTIONS on a route's path is 204 with `Allow` (no token needed); HEAD is
            answered for every GET route (the GET's status and headers, no body). Any route
            may answer 500 (details in the server log, never in the answer). Every answer
            carries `X-Request-ID`: the request's own when it is 1 to 128 visible ASCII
            characters, else a new one; the access log names it.
        servers:
          - url: http://127.0.0.1:8080
        security:
          - bearer: []
        paths:
          /v1/members/{id}/matches:
            get:
              operationId: getMatches
              summary: A page of the member's matches, ranked by score descending then id ascending.
              description: >-
                A missing or stale set (a dormant or evicted member, a set lost with a
                shard) is regenerated within the request and `regenerated` is true. When
                that cannot be done now (the member's shard is down) the answer is 503
                with Retry-After and an interactive rebuild is queued. An offset past the
                end is an empty page with the total.
              parameters:
                - $ref: '#/components/parameters/id'
                - $ref: '#/components/parameters/offset'
                - $ref: '#/components/parameters/limit'
              responses:
                '200':
                  description: The page.
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/MatchesPage'}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '404': {$ref: '#/components/responses/NotFound'}
                '500': {$ref: '#/components/responses/Internal'}
                '503': {$ref: '#/components/responses/Unavailable'}
          /v1/members/{id}/score/{other}:
            get:
              operationId: getPairScore
              summary: One pair's score, or the rule that excludes the pair.
              parameters:
                - $ref: '#/components/parameters/id'
                - name: other
                  in: path
                  required: true
                  schema: {$ref: '#/components/schemas/MemberID'}
              responses:
                '200':
                  description: The pair.
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/PairScore'}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '404': {$ref: '#/components/responses/NotFound'}
                '500': {$ref: '#/components/responses/Internal'}
                '503': {$ref: '#/components/responses/Unavailable'}
          /v1/members/{id}:
            put:
              operationId: putMember
              summary: Creates or replaces a member; queues an interactive rebuild of their matches.
              parameters:
                - $ref: '#/components/parameters/id'
              requestBody:
                required: true
                description: >-
                  One member in the import line format (SCORING.md), at most 1048576 bytes,
                  on one line; its id must be the path's. The body is read as JSON whatever
                  its Content-Type.
                content:
                  application/json:
                    schema: {$ref: '#/components/schemas/Member'}
              responses:
                '200':
                  description: Stored.
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [member, queued]
                        additionalProperties: false
                        properties:
                          member: {$ref: '#/components/schemas/MemberID'}
                          queued: {type: boolean, description: false when the queue was unreachable (the repair sweep catches up)}
                  links:
                    GetMatches: {operationId: getMatches, parameters: {id: '$response.body#/member'}}
                    GetPairScore: {operationId: getPairScore, parameters: {id: '$response.body#/member'}}
                    Login: {operationId: login, parameters: {id: '$response.body#/member'}}
                    Delete: {operationId: deleteMember, parameters: {id: '$response.body#/member'}}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '413': {$ref: '#/components/responses/TooLarge'}
                '422': {$ref: '#/components/responses/Invalid'}
                '500': {$ref: '#/components/responses/Internal'}
                '503': {$ref: '#/components/responses/Unavailable'}
            delete:
              operationId: deleteMember
              summary: Deletes a member; from this answer on, no read returns them.
              parameters:
                - $ref: '#/components/parameters/id'
              responses:
                '200':
                  description: Deleted.
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [member, deleted]
                        additionalProperties: false
                        properties:
                          member: {$ref: '#/components/schemas/MemberID'}
                          deleted: {type: boolean, enum: [true]}
                  links:
                    GetMatches: {operationId: getMatches, parameters: {id: '$response.body#/member'}, description: Now 404.}
                    Login: {operationId: login, parameters: {id: '$response.body#/member'}, description: Now 404.}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '404': {$ref: '#/components/responses/NotFound'}
                '500': {$ref: '#/components/responses/Internal'}
                '503': {$ref: '#/components/responses/Unavailable'}
          /v1/members/{id}/login:
            post:
              operationId: login
              summary: Marks the member active; one without a current set gets a shard and an interactive rebuild.
              parameters:
                - $ref: '#/components/parameters/id'
              responses:
                '200':
                  description: Recorded.
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [member, set]
                        additionalProperties: false
                        properties:
                          member: {$ref: '#/components/schemas/MemberID'}
                          set: {type: string, enum: [current, rebuild_queued]}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '404': {$ref: '#/components/responses/NotFound'}
                '500': {$ref: '#/components/responses/Internal'}
                '503': {$ref: '#/components/responses/Unavailable'}
          /livez:
            get:
              operationId: live
              summary: Liveness probe; 200 whenever the process serves HTTP (it checks nothing else).
              security: []
              responses:
                '200': {description: The process serves., content: {application/json: {schema: {$ref: '#/components/schemas/Liveness'}}}}
                '500': {$ref: '#/components/responses/Internal'}
          /readyz:
            get:
              operationId: ready
              summary: Readiness probe; 200 when this instance should take traffic.
              description: >-
                Ready: MySQL answers or the directory cache holds members, the population
                snapshot is loaded, and at least one shard answers. A shard or the queue down
                is degraded (see /healthz), not unready.
              security: []
              responses:
                '200': {description: Ready., content: {application/json: {schema: {$ref: '#/components/schemas/Readiness'}}}}
                '500': {$ref: '#/components/responses/Internal'}
                '503': {description: Not ready; reasons names why., content: {application/json: {schema: {$ref: '#/components/schemas/Readiness'}}}}
          /healthz:
            get:
              operationId: health
              summary: MySQL, the queue and each shard; 503 only when not ready (as /readyz).
              security: []
              responses:
                '200': {description: Ready; status ok (everything answers) or degraded (something does not)., content: {application/json: {schema: {$ref: '#/components/schemas/Health'}}}}
                '500': {$ref: '#/components/responses/Internal'}
                '503': {description: Not ready., content: {application/json: {schema: {$ref: '#/components/schemas/Health'}}}}
          /metrics:
            get:
              operationId: metrics
              summary: Prometheus text exposition.
              security: []
              responses:
                '200': {description: Metrics., content: {text/plain: {schema: {type: string}}}}
                '404': {description: Metrics are not enabled in this process., content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
                '500': {$ref: '#/components/responses/Internal'}
          /openapi.yaml:
            get:
              operationId: openAPI
              summary: This document.
              security: []
              responses:
                '200': {description: The document., content: {application/yaml: {schema: {type: object, required: [openapi, info, paths], properties: {openapi: {type: string}}}}}}
                '500': {$ref: '#/components/responses/Internal'}
          /browse/{id}:
            get:
              operationId: browse
              summary: An HTML page of the member's ranked matches, for operators.
              description: >-
                Takes the token as a bearer header, or once as ?token=, which starts a
                browser session (the kindred_session cookie: signed, expiring after 12 hours,
                never the token; it opens read pages only, never the API) and redirects (303)
                to the same page without the token; a wrong ?token= is 401.
              security:
                - bearer: []
                - cookie: []
              parameters:
                - $ref: '#/components/parameters/id'
                - $ref: '#/components/parameters/offset'
                - $ref: '#/components/parameters/limit'
                - {name: token, in: query, schema: {type: string}, description: "The API token, exchanged for a session cookie."}
              responses:
                '200': {description: The page., content: {text/html: {schema: {type: string}}}}
                '303':
                  description: A browser session started.
                  headers:
                    Location: {required: true, schema: {type: string}}
                    Set-Cookie: {required: true, schema: {type: string}}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '404': {$ref: '#/components/responses/NotFound'}
                '500': {$ref: '#/components/responses/Internal'}
                '503': {$ref: '#/components/responses/Unavailable'}
        components:
          securitySchemes:
            bearer: {type: http, scheme: bearer}
            cookie: {type: apiKey, in: cookie, name: kindred_session}
          parameters:
            id:
              name: id
              in: path
              required: true
              description: Decimal digits only.
              schema: {$ref: '#/components/schemas/MemberID'}
            offset:
              name: offset
              in: query
              description: Given at most once.
              schema: {type: integer, minimum: 0, maximum: 1000000, default: 0}
            limit:
              name: limit
              in: query
              description: Given at most once.
              schema: {type: integer, minimum: 1, maximum: 500, default: 50}
          schemas:
            MemberID: {type: integer, minimum: 1, maximum: 4294967295}
            Gender: {type: string, enum: [man, woman, nonbinary]}
            Score: {type: string, pattern: '^(10\\.0|[0-9]\\.[0-9])$', example: '7.3'}
            Member:
              type: object
              description: >-
                The import line format (SCORING.md). Fields not named here are ignored;
                each named field may appear once. Each answer names a question of the
                survey (0 to Q-1; the fixtures' survey has Q = 100) at most once, an answer
                and accepted options below that question's option count (2 to 8); seeking
                may repeat a gender (it counts once).
              required: [id, gender, seeking, age, age_min, age_max, answers]
              additionalProperties: true
              properties:
                id: {$ref: '#/components/schemas/MemberID'}
                gender: {$ref: '#/components/schemas/Gender'}
                seeking: {type: array, minItems: 1, items: {$ref: '#/components/schemas/Gender'}}
                age: {type: integer, minimum: 18, maximum: 120}
                age_min: {type: integer, minimum: 18, maximum: 120}
                age_max: {type: integer, minimum: 18, maximum: 120, description: At least age_min.}
                last_active:
                  type: string
                  format: date-time
                  nullable: true
                  description: An RFC 3339 UTC timestamp (Z or +00:00); absent or null for never active.
                  pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-]00:00)$'
                  example: '2026-10-03T18:22:05Z'
                answers:
                  type: array
                  maxItems: 512
                  description: May be empty; a question missing from it was skipped.
                  items: {$ref: '#/components/schemas/Answer'}
                blocked:
                  type: array
                  nullable: true
                  description: Ids that need not exist.
                  items: {$ref: '#/components/schemas/MemberID'}
              example:
                id: 17
                gender: woman
                seeking: [man, nonbinary]
                age: 29
                age_min: 25
                age_max: 40
                last_active: '2026-10-03T18:22:05Z'
                answers: [{q: 0, answer: 2, accept: [1, 2], importance: 3}]
                blocked: [4711]
            Answer:
              type: object
              description: Fields not named here are ignored; each may appear once.
              required: [q, answer, accept, importance]
              additionalProperties: true
              properties:
                q: {type: integer, minimum: 0, maximum: 511, description: A question of the survey.}
                answer: {type: integer, minimum: 0, maximum: 7, description: One of the question's options.}
                accept: {type: array, minItems: 1, items: {type: integer, minimum: 0, maximum: 7}}
                importance: {type: integer, minimum: 0, maximum: 4, description: 0 irrelevant ... 4 mandatory.}
            Match:
              type: object
              required: [id, score]
              additionalProperties: false
              properties:
                id: {$ref: '#/components/schemas/MemberID'}
                score: {$ref: '#/components/schemas/Score'}
            MatchesPage:
              type: object
              required: [member, total, offset, limit, generated_at, regenerated, matches]
              additionalProperties: false
              properties:
                member: {$ref: '#/components/schemas/MemberID'}
                total: {type: integer, minimum: 0}
                offset: {type: integer, minimum: 0, maximum: 1000000}
                limit: {type: integer, minimum: 1, maximum: 500}
                generated_at: {type: string, format: date-time}
                regenerated: {type: boolean}
                matches: {type: array, maxItems: 500, items: {$ref: '#/components/schemas/Match'}}
            PairScore:
              type: object
              required: [member, other, score]
              additionalProperties: false
              description: A scored pair has score and common; an excluded one has score null and excluded.
              properties:
                member: {$ref: '#/components/schemas/MemberID'}
                other: {$ref: '#/components/schemas/MemberID'}
                score: {type: string, nullable: true, pattern: '^(10\\.0|[0-9]\\.[0-9])$'}
                common: {type: integer, minimum: 0}
                excluded: {type: string, enum: [same_member, seeking, age, blocked, too_few_common, no_weight]}
            Liveness:
              type: object
              required: [status]
              additionalProperties: false
              properties:
                status: {type: string, enum: [ok]}
            Readiness:
              type: object
              required: [status, reasons]
              additionalProperties: false
              properties:
                status: {type: string, enum: [ready, not_ready]}
                reasons: {type: array, items: {type: string}}
            Health:
              type: object
              required: [status, ready, mysql, queue, shards, directory_cached, snapshot]
              additionalProperties: false
              properties:
                status: {type: string, enum: [ok, degraded, not_ready]}
                ready: {type: boolean}
                mysql: {type: string, enum: [ok, unavailable, unknown]}
                queue: {type: string, enum: [ok, unavailable, unknown]}
                shards: {type: object, additionalProperties: {type: string, enum: [ok, unavailable]}}
                directory_cached: {type: integer, minimum: 0, description: Members whose shard this instance has cached.}
                snapshot:
                  type: object
                  required: [members, age_seconds]
                  additionalProperties: false
                  properties:
                    members: {type: integer, minimum: 0}
                    age_seconds: {type: integer, minimum: 0}
            Error:
              type: object
              required: [error]
              additionalProperties: false
              properties:
                error:
                  type: object
                  required: [code, message]
                  additionalProperties: false
                  properties:
                    code: {type: string}
                    message: {type: string}
          responses:
            BadRequest: {description: A malformed id or paging parameter; the message names it., content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            Unauthorized:
              description: A missing or wrong token.
              headers:
                WWW-Authenticate: {required: true, schema: {type: string}}
              content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
            NotFound: {description: An unknown or deleted member., content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            MethodNotAllowed:
              description: The path does not answer this method (any route; not listed per operation).
              headers:
                Allow: {required: true, schema: {type: string}}
              content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
            TooLarge: {description: A body over 1048576 bytes., content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            Invalid: {description: An invalid member document; the message names the field., content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            Internal: {description: A failure whose details are in the server log., content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            Unavailable:
              description: A dependency is down; try again after Retry-After seconds.
              headers:
                Retry-After: {required: true, schema: {type: integer, minimum: 1}}
              content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}

        """

    /// `METHOD /path` for every operation the document lists.
    package static var operations: Set<String> {
        var result = Set<String>()
        var path: String?
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("  /") && line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("components:") {
                path = nil
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "put", "post", "delete", "patch", "head", "options"].contains(method) {
                    result.insert("\(method.uppercased()) \(path)")
                }
            }
        }
        return result
    }
}
