import Foundation

/// The OpenAPI 3 description of every route ``WebRoutes`` serves, served at
/// `/openapi.yaml`. A test compares its paths and methods with the router's.
public enum OpenAPIDocument {
    public static let yaml = """
        openapi: 3.0.3
        info:
          title: Kindred
          version: "1.0"
          description: >-
            Precomputed compatibility matches. Every /v1 route needs
            `Authorization: Bearer TOKEN`. Errors are {"error": {"code", "message"}}.
            Member ids are integers from 1 to 4294967295.
        servers:
          - url: http://127.0.0.1:8080
        security:
          - bearer: []
        paths:
          /v1/members/{id}/matches:
            get:
              summary: A page of the member's matches, ranked by score descending then id ascending.
              description: >-
                A missing or stale set (a dormant or evicted member, a set lost with a
                shard) is regenerated within the request and `regenerated` is true. When
                that cannot be done now (the member's shard is down) the answer is 503
                with Retry-After and an interactive rebuild is queued.
              parameters:
                - $ref: '#/components/parameters/id'
                - name: offset
                  in: query
                  schema: {type: integer, minimum: 0, maximum: 1000000, default: 0}
                - name: limit
                  in: query
                  schema: {type: integer, minimum: 1, maximum: 500, default: 50}
              responses:
                '200':
                  description: The page.
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/MatchesPage'}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '404': {$ref: '#/components/responses/NotFound'}
                '503': {$ref: '#/components/responses/Unavailable'}
          /v1/members/{id}/score/{other}:
            get:
              summary: One pair's score, or the rule that excludes the pair.
              parameters:
                - $ref: '#/components/parameters/id'
                - name: other
                  in: path
                  required: true
                  schema: {type: integer, minimum: 1, maximum: 4294967295}
              responses:
                '200':
                  description: The pair.
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/PairScore'}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '404': {$ref: '#/components/responses/NotFound'}
                '503': {$ref: '#/components/responses/Unavailable'}
          /v1/members/{id}:
            put:
              summary: Creates or replaces a member; queues an interactive rebuild of their matches.
              parameters:
                - $ref: '#/components/parameters/id'
              requestBody:
                required: true
                description: One member in the import line format (SCORING.md); its id must be the path's.
                content:
                  application/json:
                    schema: {type: object}
              responses:
                '200':
                  description: Stored.
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [member, queued]
                        properties:
                          member: {type: integer}
                          queued: {type: boolean, description: false when the queue was unreachable (the repair sweep catches up)}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '413': {$ref: '#/components/responses/Error'}
                '422': {$ref: '#/components/responses/Invalid'}
                '503': {$ref: '#/components/responses/Unavailable'}
            delete:
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
                        properties:
                          member: {type: integer}
                          deleted: {type: boolean}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '404': {$ref: '#/components/responses/NotFound'}
                '503': {$ref: '#/components/responses/Unavailable'}
          /v1/members/{id}/login:
            post:
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
                        properties:
                          member: {type: integer}
                          set: {type: string, enum: [current, rebuild_queued]}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '404': {$ref: '#/components/responses/NotFound'}
                '503': {$ref: '#/components/responses/Unavailable'}
          /healthz:
            get:
              summary: MySQL, the queue and each shard.
              security: []
              responses:
                '200': {description: Everything reachable., content: {application/json: {schema: {$ref: '#/components/schemas/Health'}}}}
                '503': {description: Something is not., content: {application/json: {schema: {$ref: '#/components/schemas/Health'}}}}
          /metrics:
            get:
              summary: Prometheus text exposition.
              security: []
              responses:
                '200': {description: Metrics., content: {text/plain: {schema: {type: string}}}}
          /openapi.yaml:
            get:
              summary: This document.
              security: []
              responses:
                '200': {description: The document., content: {application/yaml: {schema: {type: string}}}}
          /browse/{id}:
            get:
              summary: An HTML page of the member's ranked matches, for operators.
              description: >-
                Takes the token as a bearer header, the kindred_token cookie, or once
                as ?token=, which sets the cookie and redirects (303) without it.
              security: []
              parameters:
                - $ref: '#/components/parameters/id'
                - {name: offset, in: query, schema: {type: integer, minimum: 0, default: 0}}
                - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 500, default: 50}}
                - {name: token, in: query, schema: {type: string}}
              responses:
                '200': {description: The page., content: {text/html: {schema: {type: string}}}}
                '303': {description: Token taken into a cookie.}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '404': {$ref: '#/components/responses/NotFound'}
                '503': {$ref: '#/components/responses/Unavailable'}
        components:
          securitySchemes:
            bearer: {type: http, scheme: bearer}
          parameters:
            id:
              name: id
              in: path
              required: true
              schema: {type: integer, minimum: 1, maximum: 4294967295}
          schemas:
            Match:
              type: object
              required: [id, score]
              properties:
                id: {type: integer}
                score: {type: string, pattern: '^(10\\.0|[0-9]\\.[0-9])$', example: '7.3'}
            MatchesPage:
              type: object
              required: [member, total, offset, limit, generated_at, regenerated, matches]
              properties:
                member: {type: integer}
                total: {type: integer}
                offset: {type: integer}
                limit: {type: integer}
                generated_at: {type: string, format: date-time}
                regenerated: {type: boolean}
                matches: {type: array, items: {$ref: '#/components/schemas/Match'}}
            PairScore:
              type: object
              required: [member, other, score]
              properties:
                member: {type: integer}
                other: {type: integer}
                score: {type: string, nullable: true}
                common: {type: integer}
                excluded: {type: string, enum: [same_member, seeking, age, blocked, too_few_common, no_weight]}
            Health:
              type: object
              properties:
                status: {type: string, enum: [ok, degraded]}
                mysql: {type: string}
                queue: {type: string}
                shards: {type: object, additionalProperties: {type: string}}
                snapshot: {type: object}
            Error:
              type: object
              required: [error]
              properties:
                error:
                  type: object
                  required: [code, message]
                  properties:
                    code: {type: string}
                    message: {type: string}
          responses:
            Error: {description: An error., content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            BadRequest: {description: A malformed id or out-of-range paging., content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            Unauthorized: {description: A missing or wrong token., content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            NotFound: {description: An unknown member., content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            Invalid: {description: An invalid member document; the message names the field., content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            Unavailable:
              description: A dependency is down; try again after Retry-After seconds.
              headers:
                Retry-After: {schema: {type: integer}}
              content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}

        """

    /// `METHOD /path` for every operation the document lists.
    public static var operations: Set<String> {
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
